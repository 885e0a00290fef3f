# Tiny linear probe for CPU tests and the demo: the ViT-B protocol (same pipeline, frozen backbone, BN
# neck, LARS, warm-up + cosine) on the tiny MAGE of configs/mage/mage_vit-tiny_1xb8-20iters_photo-crops-32px.py
# (32 px, 'tiny' tokenizer with factor 4 -> 8x8 tokens, 64-d 2-layer ViT). Data ("photo-crops-5cls"): an
# ImageFolder tree data_root/{train,val}/<class>/<image> of 32 px crops of 5 real photos, labelled by source
# photo (tests make one with mage_mm.datasets.photos; any ImageFolder tree of 5 classes works).
_base_ = ['./vit-base-p16_8xb512-linear-coslr-90e_in1k-256px.py']

# the tiny pretraining run's last checkpoint
# (python tools/train.py configs/mage/mage_vit-tiny_1xb8-20iters_photo-crops-32px.py)
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
        frozen_stages=2,
        tokenizer=dict(arch='tiny', init_cfg=dict(type='Pretrained', checkpoint=pretrained,
                                                  prefix='target_generator.')),
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(input_features=64),
    head=dict(num_classes=num_classes, in_channels=64),
)

data_root = 'data/tiny_labelled/'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCropNoRetry', scale=32, crop_ratio_range=(0.2, 1.0), backend='pillow',
         interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
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
