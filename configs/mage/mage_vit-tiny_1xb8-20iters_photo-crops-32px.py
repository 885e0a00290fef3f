# Tiny MAGE for CPU tests and the demo: 32 px images, a 32-channel tokenizer with 256 codes (factor 4,
# 8x8 = 64 tokens), a 2-layer 64-d ViT and a 1-layer 32-d decoder (configs/_base_/models/mage_vit-tiny.py).
# Trains in seconds on a laptop CPU.
# Data ("photo-crops"): an unlabelled folder of 32 px crops of the real photos shipped in installed packages,
#   python tools/dataset_converters/prepare_photo_crops.py data/tiny_images --num 64 --size 32
# (any folder of images works; tests make one the same way).
_base_ = ['../_base_/models/mage_vit-tiny.py', '../_base_/default_runtime.py']

data_root = 'data/tiny_images/'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.2, 1.0), backend='pillow',
         interpolation='bilinear'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,  # no workers to keep (OpenMMLab's tools/train.py defaults it to True)
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='CustomDataset', data_root=data_root, data_prefix='', with_label=False,
                 pipeline=train_pipeline),
)

# mmengine's AmpOptimWrapper refuses CPU: plain OptimWrapper, otherwise the official recipe
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1.5e-4 * 8 / 256 * 20, betas=(0.9, 0.95), weight_decay=0.05),
    clip_grad=dict(max_norm=3.0),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0, flat_decay_mult=0.0),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=5),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=5, end=20, eta_min=0.0),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=20)
log_processor = dict(by_epoch=False)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=5),
    checkpoint=dict(type='MAGECheckpointHook', interval=10, by_epoch=False, max_keep_ckpts=2))
# CPU DDP (tools/dist_train.sh CONFIG 2): gloo, and no device ids for a CPU module
env_cfg = dict(dist_cfg=dict(backend='gloo'))
model_wrapper_cfg = dict(type='MMDistributedDataParallel', device_ids=None, broadcast_buffers=False)
