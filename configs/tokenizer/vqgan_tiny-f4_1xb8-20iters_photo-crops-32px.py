# Tiny MAGE tokenizer training for CPU tests: the 'tiny' MAGEVQGAN (ch 32, factor 4, 256 codes of 64-d)
# on 32 px images with L1 + LPIPS-VGG + VQ losses, a hinge PatchGAN from iteration 10 (mmagic's
# PatchDiscriminator / GANLoss, taming's adaptive weight) and dead-code restarts. Validation reports
# PSNR, LPIPS and codebook usage. Data ("photo-crops"): the folder of 32 px real photo crops written by
# tools/dataset_converters/prepare_photo_crops.py data/tiny_images (any image folder works; tests make one);
# configs/tokenizer/vqgan_tiny-f4_1xb32-*_fashion-mnist-32px.py is the demo's.
_base_ = ['../_base_/default_runtime.py']
# the trainer module imports mmagic (discriminator, GAN loss, multi-optimizer constructor)
custom_imports = dict(imports=['mage_mm.compat', 'mage_mm.register', 'mage_mm.models.algorithms.vqgan_trainer'],
                      allow_failed_imports=False)

model = dict(
    type='VQGANTokenizerTrainer',
    data_preprocessor=dict(
        type='SelfSupDataPreprocessor', mean=[0., 0., 0.], std=[255., 255., 255.], to_rgb=True),
    tokenizer=dict(type='MAGEVQGAN', arch='tiny'),
    pixel_loss_weight=1.0,
    perceptual_loss_weight=1.0,
    codebook_loss_weight=1.0,
    discriminator=dict(type='mmagic.PatchDiscriminator', in_channels=3, base_channels=32, num_conv=2),
    gan_loss=dict(type='mmagic.GANLoss', gan_type='hinge'),
    disc_weight=0.75,
    disc_start=10,
    usage_window=5,
    restart_dead_codes=True,
)

data_root = 'data/tiny_images/'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.5, 1.0), backend='pillow',
         interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs'),
]
val_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=32, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=32),
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
val_dataloader = dict(
    batch_size=16,
    num_workers=0,
    persistent_workers=False,  # no workers to keep (OpenMMLab's tools/train.py defaults it to True)
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='CustomDataset', data_root=data_root, data_prefix='', with_label=False,
                 pipeline=val_pipeline),
)
val_evaluator = dict(type='VQReconstructionMetric', items=('psnr', 'lpips', 'codebook'))
val_cfg = dict(type='ValLoop')

# one optimizer per sub-module (an OptimWrapperDict keyed 'tokenizer' / 'discriminator'),
# Adam (0.5, 0.9) as taming-transformers
optim_wrapper = dict(
    constructor='mmagic.MultiOptimWrapperConstructor',
    tokenizer=dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-3, betas=(0.5, 0.9))),
    discriminator=dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-3, betas=(0.5, 0.9))),
)
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=5)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=20, val_interval=10)
log_processor = dict(by_epoch=False)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=5, log_metric_by_epoch=False),
    checkpoint=dict(type='MAGECheckpointHook', interval=10, by_epoch=False, max_keep_ckpts=2))
# CPU DDP (tools/dist_train.sh CONFIG 2): gloo; tokenizer and discriminator wrapped separately
env_cfg = dict(dist_cfg=dict(backend='gloo'))
model_wrapper_cfg = dict(type='MMSeparateDistributedDataParallel', device_ids=None, broadcast_buffers=False,
                         find_unused_parameters=False)
