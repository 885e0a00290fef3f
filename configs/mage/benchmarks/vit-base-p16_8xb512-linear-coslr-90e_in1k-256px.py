# MAGE ViT-B linear probe on ImageNet-1k, 256 px, total batch 4096 (8 GPUs x 512; the official run used
# 32 x 128), the official protocol (LTH14/mage main_linprobe.py --global_pool, blr 0.1):
# * frozen MAGEViT with its tokenizer (images in [0, 1] -> VQGAN tokens -> encoder); features = mean of the
#   image tokens of the last block without the final norm, then a fresh frozen identity LayerNorm (fc_norm);
#   in train mode the token-embedding dropout 0.1 stays active (official), the blocks have no dropout;
# * BatchNorm1d without affine (eps 1e-6) + linear head (trunc-normal std 0.01), cross-entropy;
# * LARS (the official update rule, MAGELARS), lr = 0.1 * 4096 / 256 = 1.6, wd 0, momentum 0.9;
#   90 epochs, 10 warm-up, half-cycle cosine to 0 per iteration;
# * train: single-draw RandomResizedCrop 256 (0.2-1, bicubic) + flip; eval: Resize 292 + CenterCrop 256.
# Weights: a mage_mm pretraining checkpoint (tools/train.py configs/mage/mage_vit-base-*.py) or an official
# one converted with tools/model_converters/mage_to_mmpretrain.py: the ViT is read from its "backbone."
# entries, the tokenizer from its "target_generator." entries.
_base_ = ['../../_base_/default_runtime.py']

pretrained = 'checkpoints/mage_vit-base-p16_in1k-256px_mmpretrain.pth'
num_classes = 1000
embed_dims = 768
model = dict(
    type='ImageClassifier',
    data_preprocessor=dict(
        type='ClsDataPreprocessor', num_classes=num_classes, mean=[0., 0., 0.], std=[255., 255., 255.],
        to_rgb=True),
    backbone=dict(
        type='MAGEViT',
        arch='b',
        drop_rate=0.0,
        attn_drop_rate=0.0,
        embed_drop_rate=0.1,
        out_type='avg_featmap',
        frozen_stages=12,
        tokenizer=dict(
            type='MAGEVQGAN', arch='official',
            init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='target_generator.')),
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(type='ClsBatchNormNeck', input_features=embed_dims, affine=False, eps=1e-6),
    head=dict(
        type='LinearClsHead',
        num_classes=num_classes,
        in_channels=embed_dims,
        loss=dict(type='CrossEntropyLoss'),
        init_cfg=dict(type='TruncNormal', layer='Linear', std=0.01)),
)

# ImageFolder layout, as the official scripts: data_root/{train,val}/<class>/<image>
dataset_type = 'CustomDataset'
data_root = 'data/imagenet/'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCropNoRetry', scale=256, crop_ratio_range=(0.2, 1.0), backend='pillow',
         interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=292, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=256),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=512,
    num_workers=10,
    persistent_workers=True,
    pin_memory=True,
    drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, data_prefix='train', pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=512,
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

base_lr = 0.1
total_batch_size = 4096
optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(type='MAGELARS', lr=base_lr * total_batch_size / 256, weight_decay=0.0, momentum=0.9))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=True, begin=0, end=10, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=80, by_epoch=True, begin=10, end=90, eta_min=0.0,
         convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=90, val_interval=1)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=total_batch_size)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3, save_best='accuracy/top1',
                    rule='greater'))
