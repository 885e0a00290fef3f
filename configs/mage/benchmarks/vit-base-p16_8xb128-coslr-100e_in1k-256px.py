# MAGE ViT-B fine-tuning on ImageNet-1k, 256 px, total batch 1024 (8 GPUs x 128; the official run used
# 32 x 32), the official recipe (LTH14/mage main_finetune.py, README command):
# * MAGEViT with its frozen tokenizer, global pool (mean of image tokens, no final norm) + trainable
#   fc_norm, drop path 0.1 (linear over depth), token-embedding dropout 0.1, no other dropout;
# * linear head (trunc-normal std 2e-5), label smoothing 0.1 applied to the Mixup 0.8 / CutMix 1.0 targets
#   (one of the two per batch, prob 1);
# * AdamW (0.9, 0.999), wd 0.05 (none on 1-D tensors), lr = 2.5e-4 * 1024 / 256 = 1e-3, layer-wise decay
#   0.65 (token embedding 0.65^13 ... blocks.i 0.65^(12-i) ... head 1), 5 warm-up epochs, cosine to
#   1e-6 x layer scale, 100 epochs, no gradient clipping, AMP;
# * train: RandomResizedCrop 256 (0.2-1, bicubic) + flip + RandAugment rand-m9-mstd0.5-inc1 (fill = ImageNet
#   mean), no random erasing; eval: Resize 292 + CenterCrop 256.
# The official script normalises with the ImageNet mean/std for augmentation and de-normalises back to
# [0, 1] after mixup, because the tokenizer takes [0, 1]. Mixup/CutMix commute with a per-channel affine map
# and RandAugment works on uint8 pixels, so here the data preprocessor produces [0, 1] (mean 0, std 255)
# and mixes there: the model sees the same tensors (tests/test_benchmarks.py checks the equivalence).
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
        drop_path_rate=0.1,
        embed_drop_rate=0.1,
        out_type='avg_featmap',
        tokenizer=dict(
            type='MAGEVQGAN', arch='official',
            init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='target_generator.')),
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

dataset_type = 'CustomDataset'
data_root = 'data/imagenet/'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=256, crop_ratio_range=(0.2, 1.0), backend='pillow',
         interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    # timm rand-m9-mstd0.5-inc1; images are BGR here, the fill is the ImageNet mean (timm's img_mean)
    dict(type='RandAugment', policies='timm_increasing', num_policies=2, total_level=10, magnitude_level=9,
         magnitude_std=0.5, hparams=dict(pad_val=[104, 116, 124], interpolation='bicubic')),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=292, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=256),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=128,
    num_workers=10,
    persistent_workers=True,
    pin_memory=True,
    drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, data_prefix='train', pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=128,
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
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3, save_best='accuracy/top1',
                    rule='greater'))
