# The MAGE linear-probe recipe without its data (model, LARS, schedule, hooks) of
# configs/mage/benchmarks/vit-base-p16_8xb512-linear-coslr-90e_in1k-256px.py, where every choice is explained;
# the full-size and the tiny probe configs add their data (configs/_base_/datasets/*_mage-cls-*.py).
_base_ = ['../../../_base_/default_runtime.py']

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
        # the frozen tokenizer: its weights are the backbone.tokenizer.* entries of `pretrained` (init_cfg below)
        tokenizer=dict(type='MAGEVQGAN', arch='official'),
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(type='ClsBatchNormNeck', input_features=embed_dims, affine=False, eps=1e-6),
    head=dict(
        type='LinearClsHead',
        num_classes=num_classes,
        in_channels=embed_dims,
        loss=dict(type='CrossEntropyLoss'),
        init_cfg=dict(type='TruncNormal', layer='Linear', std=0.01)),
)

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
# the official probe evaluates with rank 0's BatchNorm statistics (torch's DDP broadcasts buffers by default,
# mmengine's default wrapper does not)
model_wrapper_cfg = dict(type='MMDistributedDataParallel', broadcast_buffers=True)
auto_scale_lr = dict(base_batch_size=total_batch_size)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='MAGECheckpointHook', interval=1, max_keep_ckpts=3, save_best='accuracy/top1',
                    rule='greater'))
