# The demo's MAGE, image input: the "mini" MAGE (4 x 192-d ViT encoder, 2 x 128-d decoder,
# configs/_base_/models/mage_vit-mini_encoder.py) with the demo's Fashion-MNIST tokenizer
# (configs/tokenizer/vqgan_tiny-f4_1xb32-300iters_fashion-mnist-32px.py), 3000 iterations x 64 images.
# `DEMO_MODEL=mini bash tools/demo.sh` trains ./mage_vit-mini_1xb64-3000iters_fashion-mnist-tokens-k8-32px.py
# (the same model from a token cache, which this config makes: pretokenize.py THIS_CONFIG --views 8 ...);
# this one trains on the images themselves (a fresh crop per step, the tokenizer run on every crop).
_base_ = ['./mage_vit-tiny_1xb32-2000iters_fashion-mnist-32px.py', '../_base_/models/mage_vit-mini_encoder.py']

max_iters = 3000
# Dropout off (ours; the official 0.1 everywhere): 3000 steps are far from overfitting 5000 images, and on
# CPU drawing the Bernoulli masks took 25-30 % of the mini's step (measured, single thread: 0.35 vs 0.50 s).
model = dict(
    backbone=dict(arch=dict(_base_.mage_vit_mini_arch), drop_rate=0.0, attn_drop_rate=0.0),
    neck=dict(in_channels=_base_.mage_vit_mini_arch.embed_dims, **_base_.mage_mini_decoder, drop_rate=0.0,
              attn_drop_rate=0.0),
    head=dict(in_channels=_base_.mage_mini_decoder.embed_dims, embed_dims=_base_.mage_vit_mini_arch.embed_dims),
)
train_dataloader = dict(batch_size=64)
# bf16 autocast on CPU (CPUAutocastOptimWrapper; the tokenizer stays fp32, so ids are exact): at 192-d the
# matmuls are large enough for AMX/AVX512-bf16 to pay. 'auto': bf16 only where the CPU (or GPU) runs it natively;
# on a CPU without (AVX2 only) bf16 is emulated, far slower than fp32, and 'auto' trains in fp32.
# AdamW lr 1e-3 as the tiny demo model, 100 warm-up iterations.
precision = 'auto'
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=100, end=max_iters, eta_min=0.0),
]
train_cfg = dict(max_iters=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters))
