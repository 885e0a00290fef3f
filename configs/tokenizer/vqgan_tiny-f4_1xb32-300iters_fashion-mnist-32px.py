# The demo's tokenizer: the 'tiny' MAGEVQGAN trained on Fashion-MNIST at 32 px (grey replicated to RGB)
# on 2 CPU cores in a few minutes. Prepare the data first:
#   python tools/dataset_converters/prepare_fashion_mnist.py data/fashion_mnist --num-train 5000 --num-test 1000
# then: python tools/train.py configs/tokenizer/vqgan_tiny-f4_1xb32-300iters_fashion-mnist-32px.py
# and:  python tools/model_converters/export_vqgan_tokenizer.py work_dirs/<this config> \
#           work_dirs/<this config>/vqgan_tokenizer.pth
_base_ = ['./vqgan_tiny-f4_1xb8-20iters_photo-crops-32px.py']

max_iters = 300
# A few hundred CPU iterations are far too few for the adversarial term to pay off (it cost PSNR when it
# started at iteration 200), so the demo trains L1 + LPIPS + VQ only; the 256 px config uses the PatchGAN.
# Early codebook collapse (~20 of 256 codes in use) is undone by restarting codes unused for 20 iterations.
# The LPIPS VGG16 runs under bf16 autocast (ours; the tokenizer itself stays fp32, where bf16 is slower on CPU):
# measured on 2 CPU cores 0.49 vs 0.66 s per step of 32 images, PSNR / LPIPS after 250 iterations 18.94 / 0.166
# against 18.64 / 0.167 in fp32. 'auto': bf16 only where the CPU runs it natively (AVX512-BF16 / AMX), fp32 on an
# AVX2-only CPU, where emulated bf16 is far slower. On a GPU set perceptual_precision=None (the run's --precision).
model = dict(discriminator=None, usage_window=20, restart_dead_codes=True, perceptual_precision='auto')

data_root = 'data/fashion_mnist/'
# Fashion-MNIST items are centred: light scale jitter and horizontal flips only
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.8, 1.0), aspect_ratio_range=(0.9, 1.1),
         backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=32,
    dataset=dict(data_root=data_root, data_prefix='train', pipeline=train_pipeline))
val_dataloader = dict(batch_size=64, dataset=dict(data_root=data_root, data_prefix='test'))

# the tokenizer's optimizer only (no discriminator entry); its parameters only, never the frozen LPIPS net
optim_wrapper = dict(
    _delete_=True,
    constructor='mmagic.MultiOptimWrapperConstructor',
    tokenizer=dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=2e-3, betas=(0.5, 0.9))))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=20),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=20, end=max_iters, eta_min=1e-4),
]
train_cfg = dict(max_iters=max_iters, val_interval=100)
default_hooks = dict(
    logger=dict(interval=10, log_metric_by_epoch=False),
    checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
