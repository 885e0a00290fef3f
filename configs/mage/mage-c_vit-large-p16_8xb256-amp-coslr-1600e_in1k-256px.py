# MAGE-C ViT-L pretraining: the ViT-B MAGE-C choices on the MAGE ViT-L recipe (projector input 1024).
_base_ = ['./mage_vit-large-p16_8xb512-amp-coslr-1600e_in1k-256px.py']

model = dict(
    type='MAGEC',
    projector=dict(type='NonLinearNeck', in_channels=1024, hid_channels=2048, out_channels=256, num_layers=2,
                   with_avg_pool=False, with_last_bn_affine=False, norm_cfg=dict(type='SyncBN')),
    contrastive_head=dict(type='ContrastiveHead', loss=dict(type='CrossEntropyLoss'), temperature=0.2),
    contrastive_weight=0.1,
    pool='kept',
)
view_pipeline = [
    dict(type='RandomResizedCrop', scale=256, crop_ratio_range=(0.2, 1.0), backend='pillow',
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
train_dataloader = dict(batch_size=256, dataset=dict(pipeline=train_pipeline))
# the recipe's lr belongs to 2048 images (4096 views) per step; --auto-scale-lr counts images
auto_scale_lr = dict(base_batch_size=2048)
