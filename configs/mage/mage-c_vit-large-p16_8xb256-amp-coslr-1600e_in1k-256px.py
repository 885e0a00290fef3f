# MAGE-C ViT-L pretraining: the ViT-B MAGE-C choices on the MAGE ViT-L recipe (projector input 1024).
_base_ = ['./mage_vit-large-p16_8xb512-amp-coslr-1600e_in1k-256px.py', '../_base_/datasets/mage-c_views-256px.py']

model = dict(
    type='MAGEC',
    projector=dict(type='NonLinearNeck', in_channels=1024, hid_channels=2048, out_channels=256, num_layers=2,
                   with_avg_pool=False, with_last_bn_affine=False, norm_cfg=dict(type='SyncBN')),
    contrastive_head=dict(type='ContrastiveHead', loss=dict(type='CrossEntropyLoss'), temperature=0.2),
    contrastive_weight=0.1,
    pool='kept',
)
# two views per image, each the MAGE-C view pipeline (MAGE's crop + flip, colour jitter, grayscale)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='MultiView', num_views=2, transforms=[_base_.view_pipeline]),
    dict(type='PackInputs'),
]
train_dataloader = dict(batch_size=256, dataset=dict(pipeline=train_pipeline))
# the recipe's lr belongs to 2048 images (4096 views) per step; --auto-scale-lr counts images
auto_scale_lr = dict(base_batch_size=2048)
