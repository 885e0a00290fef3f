# Tiny MAGE-C for CPU tests and the demo: the tiny MAGE
# (configs/mage/mage_vit-tiny_1xb8-20iters_photo-crops-32px.py, same data) with the MAGE-C choices of
# mage-c_vit-base-p16_8xb256-amp-coslr-1600e_in1k-256px.py at 32 px, 8 images x 2 views per step, BN instead
# of SyncBN.
_base_ = ['./mage_vit-tiny_1xb8-20iters_photo-crops-32px.py']

model = dict(
    type='MAGEC',
    projector=dict(type='NonLinearNeck', in_channels=64, hid_channels=128, out_channels=32, num_layers=2,
                   with_avg_pool=False, with_last_bn_affine=False, norm_cfg=dict(type='BN1d')),
    contrastive_head=dict(type='ContrastiveHead', loss=dict(type='CrossEntropyLoss'), temperature=0.2),
    contrastive_weight=0.1,
    pool='kept',
)
view_pipeline = [
    dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.2, 1.0), backend='pillow',
         interpolation='bilinear'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomApply', prob=0.8,
         transforms=[dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4, hue=0.0)]),
    dict(type='RandomGrayscale', prob=0.2, keep_channels=True, channel_weights=(0.114, 0.587, 0.2989)),
]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='MultiView', num_views=2, transforms=[view_pipeline]),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
