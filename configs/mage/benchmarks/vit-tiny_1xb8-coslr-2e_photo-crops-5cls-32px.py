# Tiny fine-tuning for CPU tests and the demo: the ViT-B recipe (RandAugment, Mixup/CutMix, label
# smoothing, AdamW with layer-wise lr decay 0.65, drop path, warm-up + cosine) on the tiny MAGE of
# configs/mage/mage_vit-tiny_1xb8-20iters_photo-crops-32px.py. Data ("photo-crops-5cls") as in
# vit-tiny_1xb8-linear-coslr-2e_photo-crops-5cls-32px.py.
_base_ = [
    './_base_/vit-base-p16_finetune.py',
    '../../_base_/datasets/photo-crops-5cls_mage-cls-32px.py',
    '../../_base_/models/mage_vit-tiny_encoder.py',
]

pretrained = 'work_dirs/mage_vit-tiny_1xb8-20iters_photo-crops-32px/iter_20.pth'
num_classes = 5
model = dict(
    data_preprocessor=dict(num_classes=num_classes),
    backbone=dict(
        _base_.mage_vit_tiny,
        arch=dict(_delete_=True, **_base_.mage_vit_tiny.arch),
        tokenizer=dict(arch='tiny'),  # weights: the backbone.tokenizer.* entries of `pretrained`
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    head=dict(num_classes=num_classes, in_channels=_base_.mage_vit_tiny.arch.embed_dims),
)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.2, 1.0), backend='pillow',
         interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandAugment', policies='timm_increasing', num_policies=2, total_level=10, magnitude_level=9,
         magnitude_std=0.5, hparams=dict(pad_val=[104, 116, 124], interpolation='bicubic')),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

lr = 2.5e-4 * 8 / 256 * 10  # a few iterations only: 10x the recipe's batch-scaled lr
optim_wrapper = dict(type='OptimWrapper', _delete_=True,
                     optimizer=dict(type='AdamW', lr=lr, betas=(0.9, 0.999), weight_decay=0.05),
                     constructor='LearningRateDecayOptimWrapperConstructor',
                     paramwise_cfg=dict(layer_decay_rate=0.65, flat_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=True, begin=0, end=1, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=1, by_epoch=True, begin=1, end=2, eta_min_ratio=1e-3,
         convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=2)
auto_scale_lr = dict(base_batch_size=8)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(save_best=None))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
