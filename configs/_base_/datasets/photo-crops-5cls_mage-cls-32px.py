# The tiny classification data of the tiny linear probe and fine-tuning (CPU tests): the loaders of
# ./imagenet_mage-cls-256px.py on an ImageFolder tree data_root/{train,val}/<class>/<image> of 32 px crops of
# 5 real photos, labelled by source photo ("photo-crops-5cls"; tests make one with mage_mm.datasets.photos),
# evaluation ResizeEdge 36 + CenterCrop 32 (the 292/256 ratio of the full size), one process, no workers.
# Each config sets its own `train_pipeline`.
_base_ = ['./imagenet_mage-cls-256px.py']

data_root = 'data/tiny_labelled/'
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=36, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=32),
    dict(type='PackInputs'),
]
train_dataloader = dict(batch_size=8, num_workers=0, persistent_workers=False, pin_memory=False,
                        dataset=dict(data_root=data_root))
val_dataloader = dict(batch_size=16, num_workers=0, persistent_workers=False, pin_memory=False,
                      dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
