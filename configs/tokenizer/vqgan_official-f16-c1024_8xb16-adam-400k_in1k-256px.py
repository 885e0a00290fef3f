# Train MAGE's tokenizer from scratch: the official MAGEVQGAN architecture (MaskGIT VQGAN: ch 128,
# ch_mult (1, 1, 2, 2, 4), 2 res blocks, no attention, f16 -> 16x16 tokens, 1024 codes of 256-d) on
# ImageNet-1k at 256 px. The official MAGE release ships a tokenizer trained elsewhere ("strong
# augmentation", recipe unpublished); this config follows taming-transformers' ImageNet f16 VQGAN
# recipe instead: L1 + LPIPS-VGG (weight 1) + codebook/commitment (weight 1, beta 0.25) + a 2-layer
# hinge PatchGAN with the adaptive weight x 0.75, starting at iteration 0; Adam (0.5, 0.9) with
# lr = 4.5e-6 x total batch. Not trained here (no GPU): a recipe, not a reproduced result.
# Use the result in MAGE: backbone=dict(tokenizer=dict(type='MAGEVQGAN', arch='official', init_cfg=dict(
#     type='Pretrained', checkpoint='work_dirs/<this config>/iter_400000.pth', prefix='tokenizer.')))
# or export it: tools/model_converters/export_vqgan_tokenizer.py work_dirs/<this config> vqgan.pth
_base_ = ['../_base_/default_runtime.py']
custom_imports = dict(imports=['mage_mm.compat', 'mage_mm.register', 'mage_mm.models.algorithms.vqgan_trainer'],
                      allow_failed_imports=False)

model = dict(
    type='VQGANTokenizerTrainer',
    data_preprocessor=dict(
        type='SelfSupDataPreprocessor', mean=[0., 0., 0.], std=[255., 255., 255.], to_rgb=True),
    tokenizer=dict(type='MAGEVQGAN', arch='official'),
    pixel_loss_weight=1.0,
    perceptual_loss_weight=1.0,
    codebook_loss_weight=1.0,
    discriminator=dict(type='mmagic.PatchDiscriminator', in_channels=3, base_channels=64, num_conv=2),
    gan_loss=dict(type='mmagic.GANLoss', gan_type='hinge'),
    disc_weight=0.75,
    disc_start=0,
    usage_window=1000,  # monitoring only: the faithful recipe does not restart codes
    restart_dead_codes=False,
)

data_root = 'data/imagenet/'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=256, crop_ratio_range=(0.35, 1.0), backend='pillow',
         interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs'),
]
val_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=256),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=16,
    num_workers=8,
    persistent_workers=True,
    pin_memory=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='CustomDataset', data_root=data_root, data_prefix='train', with_label=False,
                 pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=32,
    num_workers=8,
    persistent_workers=True,
    pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    # 10k of the 50k validation images keep each validation round short
    dataset=dict(type='CustomDataset', data_root=data_root, data_prefix='val', with_label=False,
                 indices=10000, pipeline=val_pipeline),
)
val_evaluator = dict(type='VQReconstructionMetric', items=('psnr', 'lpips', 'codebook'))
val_cfg = dict(type='ValLoop')

total_batch_size = 8 * 16
lr = 4.5e-6 * total_batch_size
optim_wrapper = dict(
    constructor='mmagic.MultiOptimWrapperConstructor',
    tokenizer=dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=lr, betas=(0.5, 0.9))),
    discriminator=dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=lr, betas=(0.5, 0.9))),
)
train_cfg = dict(type='IterBasedTrainLoop', max_iters=400000, val_interval=20000)
log_processor = dict(by_epoch=False)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=100, log_metric_by_epoch=False),
    checkpoint=dict(type='MAGECheckpointHook', interval=20000, by_epoch=False, max_keep_ckpts=3))
# tokenizer and discriminator get separate DDP wrappers (each steps on its own optimizer)
model_wrapper_cfg = dict(type='MMSeparateDistributedDataParallel', broadcast_buffers=False,
                         find_unused_parameters=False)
auto_scale_lr = dict(base_batch_size=total_batch_size)
