# Tiny fine-tuning for CPU tests and the demo: the ViT-B recipe (RandAugment, Mixup/CutMix, label
# smoothing, AdamW with layer-wise lr decay 0.65, drop path, warm-up + cosine) on the tiny MAGE of
# configs/mage/mage_vit-tiny_1xb8-20iters_photo-crops-32px.py. Data ("photo-crops-5cls") as in
# vit-tiny_1xb8-linear-coslr-2e_photo-crops-5cls-32px.py.
_base_ = ['./vit-base-p16_8xb128-coslr-100e_in1k-256px.py']

pretrained = 'work_dirs/mage_vit-tiny_1xb8-20iters_photo-crops-32px/iter_20.pth'
codebook_size = 256
num_classes = 5
model = dict(
    data_preprocessor=dict(num_classes=num_classes),
    backbone=dict(
        arch=dict(_delete_=True, embed_dims=64, num_layers=2, num_heads=4, feedforward_channels=256),
        codebook_size=codebook_size,
        num_legacy_class_ids=1,
        fake_class_id=codebook_size,
        token_grid=8,
        tokenizer=dict(arch='tiny', init_cfg=dict(type='Pretrained', checkpoint=pretrained,
                                                  prefix='target_generator.')),
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    head=dict(num_classes=num_classes, in_channels=64),
)

data_root = 'data/tiny_labelled/'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.2, 1.0), backend='pillow',
         interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandAugment', policies='timm_increasing', num_policies=2, total_level=10, magnitude_level=9,
         magnitude_std=0.5, hparams=dict(pad_val=[104, 116, 124], interpolation='bicubic')),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=36, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=32),
    dict(type='PackInputs'),
]
train_dataloader = dict(batch_size=8, num_workers=0, persistent_workers=False, pin_memory=False,
                        dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(batch_size=16, num_workers=0, persistent_workers=False, pin_memory=False,
                      dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader

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
