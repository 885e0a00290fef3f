# The MAGE fine-tuning recipe without its data (model, AdamW with layer-wise lr decay, schedule, hooks) of
# configs/mage/benchmarks/vit-base-p16_8xb128-coslr-100e_in1k-256px.py, where every choice is explained;
# the full-size and the tiny fine-tune configs add their data (configs/_base_/datasets/*_mage-cls-*.py).
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
        drop_path_rate=0.1,
        embed_drop_rate=0.1,
        out_type='avg_featmap',
        # the frozen tokenizer: its weights are the backbone.tokenizer.* entries of `pretrained` (init_cfg below)
        tokenizer=dict(type='MAGEVQGAN', arch='official'),
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=None,
    head=dict(
        type='LinearClsHead',
        num_classes=num_classes,
        in_channels=embed_dims,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        init_cfg=dict(type='TruncNormal', layer='Linear', std=2e-5)),
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]),
)

base_lr = 2.5e-4
total_batch_size = 1024
lr = base_lr * total_batch_size / 256
min_lr = 1e-6
optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=lr, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='LearningRateDecayOptimWrapperConstructor',
    # MAGEViT.get_layer_depth: token_emb -> 0, blocks.i -> i + 1, fc_norm / head -> 13 (scale 1);
    # the frozen tokenizer has no trainable parameters
    paramwise_cfg=dict(layer_decay_rate=0.65, flat_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=True, begin=0, end=5, convert_to_iter_based=True),
    # official min lr 1e-6 is scaled by each group's layer-decay factor, hence a ratio
    dict(type='CosineAnnealingLR', T_max=95, by_epoch=True, begin=5, end=100, eta_min_ratio=min_lr / lr,
         convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=100, val_interval=1)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=total_batch_size)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='MAGECheckpointHook', interval=1, max_keep_ckpts=3, save_best='accuracy/top1',
                    rule='greater'))
