# MAGE ViT-B pretraining on ImageNet-1k, 256 px, total batch 4096 (8 GPUs x 512; the official run used
# 64 GPUs x 64 - any split with the same total batch is the same recipe, or use --auto-scale-lr).
# bf16 instead of fp16: --cfg-options optim_wrapper.dtype=bfloat16
_base_ = [
    '../_base_/models/mage_vit-base-p16.py',
    '../_base_/datasets/imagenet_bs512_mage-256px.py',
    '../_base_/schedules/mage_adamw-coslr-1600e.py',
    '../_base_/default_runtime.py',
]
default_hooks = dict(checkpoint=dict(type='MAGECheckpointHook', interval=40, max_keep_ckpts=3))
resume = True
