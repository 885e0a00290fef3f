# MAGE ViT-L pretraining on ImageNet-1k, 256 px, total batch 4096 (official recipe as ViT-B; 8 x 512 draws 8 masking
# ratios a step, the official 64 x 64 run 64: model.backbone.ratio_group_size=64 matches it, see the ViT-B config).
_base_ = [
    '../_base_/models/mage_vit-large-p16.py',
    '../_base_/datasets/imagenet_bs512_mage-256px.py',
    '../_base_/schedules/mage_adamw-coslr-1600e.py',
    '../_base_/default_runtime.py',
]
default_hooks = dict(checkpoint=dict(type='MAGECheckpointHook', interval=40, max_keep_ckpts=3))
resume = True
