# Tiny MAGE-C for CPU tests and the demo: the tiny MAGE
# (configs/mage/mage_vit-tiny_1xb8-20iters_photo-crops-32px.py, same data) with the MAGE-C choices of
# mage-c_vit-base-p16_8xb256-amp-coslr-1600e_in1k-256px.py at 32 px, 8 images x 2 views per step, BN instead
# of SyncBN.
_base_ = ['./mage_vit-tiny_1xb8-20iters_photo-crops-32px.py', '../_base_/datasets/mage-c_views-256px.py']

model = dict(
    type='MAGEC',
    projector=dict(type='NonLinearNeck', in_channels=64, hid_channels=128, out_channels=32, num_layers=2,
                   with_avg_pool=False, with_last_bn_affine=False, norm_cfg=dict(type='BN1d')),
    contrastive_head=dict(type='ContrastiveHead', loss=dict(type='CrossEntropyLoss'), temperature=0.2),
    contrastive_weight=0.1,
    pool='kept',
)
# the MAGE-C views at 32 px
view_pipeline = [dict(_base_.view_pipeline[0], scale=32), *_base_.view_pipeline[1:]]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='MultiView', num_views=2, transforms=[view_pipeline]),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
