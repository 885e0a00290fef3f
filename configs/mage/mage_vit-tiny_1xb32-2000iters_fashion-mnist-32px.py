# The demo's MAGE: the tiny CPU MAGE (2-layer 64-d ViT, 1-layer decoder) pretrained on Fashion-MNIST
# (32 px, grey replicated to RGB) with the tokenizer trained by
#   python tools/train.py configs/tokenizer/vqgan_tiny-f4_1xb32-300iters_fashion-mnist-32px.py \
#       --work-dir work_dirs/demo/tokenizer
# (tools/demo.sh runs data -> tokenizer -> this, stages 1-3). The tokenizer is read from that Runner checkpoint
# (its weights sit under the 'tokenizer.' prefix). Alternatively export a plain MAGEVQGAN file with
# tools/model_converters/export_vqgan_tokenizer.py and drop the prefix.
_base_ = ['./mage_vit-tiny_1xb8-20iters_photo-crops-32px.py']

tokenizer_checkpoint = 'work_dirs/demo/tokenizer/iter_300.pth'
max_iters = 2000
model = dict(
    backbone=dict(tokenizer=dict(
        type='MAGEVQGAN', arch='tiny',
        init_cfg=dict(type='Pretrained', checkpoint=tokenizer_checkpoint, prefix='tokenizer.'))))

data_root = 'data/fashion_mnist/'
# centred 28 px items: milder crops than the official 0.2-1 (ImageNet) range
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

# AdamW (0.9, 0.95), wd 0.05 and clipping as the official recipe, but lr 1e-3 (the official 1.5e-4 x 32 / 256
# barely moves a 2-layer model in 2000 steps: loss 4.99 with 3.75e-4 vs 4.56 with 1e-3), warm-up, cosine
optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=100, end=max_iters, eta_min=0.0),
]
train_cfg = dict(max_iters=max_iters)
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
