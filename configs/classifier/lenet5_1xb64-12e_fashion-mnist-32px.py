# The judge of class-conditional samples in the demo: mmpretrain's LeNet-5 trained on the *real* Fashion-MNIST
# training split (32 px, read as grey: LeNet-5 takes one 32x32 channel), scored on the test split. The class
# accuracy of generated images (tools/analysis_tools/class_accuracy.py) is only meaningful next to this
# classifier's accuracy on real test images. Our recipe: Adam lr 1e-3, 12 epochs, batch 64, horizontal flips.
# Data: tools/dataset_converters/prepare_fashion_mnist.py data/fashion_mnist (ImageFolder {train,test}/<class>/).
_base_ = ['../_base_/default_runtime.py']

num_classes = 10
model = dict(
    type='ImageClassifier',
    data_preprocessor=dict(type='ClsDataPreprocessor', mean=[127.5], std=[127.5], num_classes=num_classes),
    backbone=dict(type='LeNet5', num_classes=num_classes),
    neck=None,
    head=dict(type='ClsHead', loss=dict(type='CrossEntropyLoss'), topk=(1, )),
)

data_root = 'data/fashion_mnist/'
train_pipeline = [
    dict(type='LoadImageFromFile', color_type='grayscale'),
    dict(type='Resize', scale=(32, 32), backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', color_type='grayscale'),
    dict(type='Resize', scale=(32, 32), backend='pillow', interpolation='bicubic'),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=64,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='CustomDataset', data_root=data_root, data_prefix='train', pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=128,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='CustomDataset', data_root=data_root, data_prefix='test', pipeline=test_pipeline),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator

max_epochs = 12
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-3))
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, eta_min=1e-5)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(logger=dict(interval=50), checkpoint=dict(interval=max_epochs, max_keep_ckpts=1))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
