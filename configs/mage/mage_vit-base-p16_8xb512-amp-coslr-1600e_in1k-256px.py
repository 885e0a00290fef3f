# MAGE ViT-B pretraining on ImageNet-1k, 256 px, total batch 4096 (8 GPUs x 512; the official run used
# 64 GPUs x 64). Not quite the same recipe: one masking ratio is drawn per forward per process, so 8 x 512 draws
# 8 ratios a step where the official run draws 64; model.backbone.ratio_group_size=64 draws one per 64-image
# sub-batch as the official run does (the default keeps the official per-process rule). Other totals: --auto-scale-lr.
# bf16 instead of fp16: --cfg-options optim_wrapper.dtype=bfloat16
_base_ = [
    '../_base_/models/mage_vit-base-p16.py',
    '../_base_/datasets/imagenet_bs512_mage-256px.py',
    '../_base_/schedules/mage_adamw-coslr-1600e.py',
    '../_base_/default_runtime.py',
]
default_hooks = dict(checkpoint=dict(type='MAGECheckpointHook', interval=40, max_keep_ckpts=3))
resume = True
