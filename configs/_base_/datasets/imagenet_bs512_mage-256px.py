# ImageNet-1k pretraining data, official MAGE augmentation: RandomResizedCrop(256, 0.2-1, bilinear)
# + horizontal flip; the model sees RGB in [0, 1] (mean 0 / std 255 in the data preprocessor).
# Any ImageNet-style folder works: data_root/train/<class or anything>/<image>.
dataset_type = 'CustomDataset'
data_root = 'data/imagenet/'

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=256, crop_ratio_range=(0.2, 1.0), backend='pillow',
         interpolation='bilinear'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=512,
    num_workers=8,
    persistent_workers=True,
    pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    # the official loader drops the last partial batch: 312 iterations per epoch at 4096 (the iteration-based
    # schedules, converted from epochs with len(train_dataloader), count 312 too)
    drop_last=True,
    collate_fn=dict(type='default_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, data_prefix='train', with_label=False,
                 pipeline=train_pipeline),
)
