# ImageNet-1k classification data of the MAGE linear probe and fine-tuning (official main_linprobe.py /
# main_finetune.py): ImageFolder layout data_root/{train,val}/<class>/<image>; evaluation Resize 292 (short
# side, bicubic) + CenterCrop 256; the model sees RGB in [0, 1] (mean 0 / std 255 in the data preprocessor).
# The two benchmarks differ in the training augmentation and the batch size, so each config sets
# `train_pipeline`, `train_dataloader.batch_size` and `val_dataloader.batch_size` itself.
dataset_type = 'CustomDataset'
data_root = 'data/imagenet/'
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=292, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=256),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    num_workers=10,
    persistent_workers=True,
    pin_memory=True,
    drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, data_prefix='train'),
)
val_dataloader = dict(
    num_workers=10,
    persistent_workers=True,
    pin_memory=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, data_prefix='val', pipeline=test_pipeline),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_evaluator = val_evaluator
