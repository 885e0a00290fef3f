# Tiny linear probe for CPU tests and the demo: the ViT-B protocol (same pipeline, frozen backbone, BN
# neck, LARS, warm-up + cosine) on the tiny MAGE of configs/mage/mage_vit-tiny_1xb8-20iters_photo-crops-32px.py
# (32 px, 'tiny' tokenizer with factor 4 -> 8x8 tokens, 64-d 2-layer ViT). Data ("photo-crops-5cls"): an
# ImageFolder tree data_root/{train,val}/<class>/<image> of 32 px crops of 5 real photos, labelled by source
# photo (configs/_base_/datasets/photo-crops-5cls_mage-cls-32px.py; any ImageFolder tree of 5 classes works).
_base_ = [
    './_base_/vit-base-p16_linear-probe.py',
    '../../_base_/datasets/photo-crops-5cls_mage-cls-32px.py',
    '../../_base_/models/mage_vit-tiny_encoder.py',
]

# the tiny pretraining run's last checkpoint
# (python tools/train.py configs/mage/mage_vit-tiny_1xb8-20iters_photo-crops-32px.py)
pretrained = 'work_dirs/mage_vit-tiny_1xb8-20iters_photo-crops-32px/iter_20.pth'
num_classes = 5
model = dict(
    data_preprocessor=dict(num_classes=num_classes),
    backbone=dict(
        _base_.mage_vit_tiny,
        arch=dict(_delete_=True, **_base_.mage_vit_tiny.arch),
        frozen_stages=2,
        tokenizer=dict(arch='tiny'),  # weights: the backbone.tokenizer.* entries of `pretrained`
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(input_features=_base_.mage_vit_tiny.arch.embed_dims),
    head=dict(num_classes=num_classes, in_channels=_base_.mage_vit_tiny.arch.embed_dims),
)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCropNoRetry', scale=32, crop_ratio_range=(0.2, 1.0), backend='pillow',
         interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

# AmpOptimWrapper refuses CPU
optim_wrapper = dict(_delete_=True, type='OptimWrapper',
                     optimizer=dict(type='MAGELARS', lr=0.1 * 8 / 256, weight_decay=0.0, momentum=0.9))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=True, begin=0, end=1, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=1, by_epoch=True, begin=1, end=2, eta_min=0.0,
         convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=2)
auto_scale_lr = dict(base_batch_size=8)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(save_best=None))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
