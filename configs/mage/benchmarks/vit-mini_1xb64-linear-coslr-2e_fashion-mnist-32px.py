# The demo's linear probe of the "mini" MAGE
# (configs/mage/mage_vit-mini_1xb64-3000iters_fashion-mnist-tokens-k8-32px.py,
# 4 x 192-d encoder): the protocol of ./vit-tiny_1xb64-linear-coslr-8e_fashion-mnist-32px.py (frozen encoder,
# global pool -> frozen identity fc_norm -> BN without affine -> linear, LARS lr 1.6, warm-up + cosine,
# train split -> held-out test split) on the wider encoder, features under bf16 autocast where the CPU runs bf16
# natively (precision 'auto'; the tokenizer stays fp32),
# and 2 epochs instead of 8 (ours: the time budget of `make demo`; 1 warm-up + 1 cosine epoch).
# The demo runs it twice: pretrained, and with `model.backbone.init_cfg=None` (a random encoder, same tokenizer).
_base_ = ['./vit-tiny_1xb64-linear-coslr-8e_fashion-mnist-32px.py', '../../_base_/models/mage_vit-mini_encoder.py']

pretrained = 'work_dirs/demo/mage/iter_3000.pth'
model = dict(
    backbone=dict(
        arch=dict(_base_.mage_vit_mini_arch),
        frozen_stages=_base_.mage_vit_mini_arch.num_layers,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(input_features=_base_.mage_vit_mini_arch.embed_dims),
    head=dict(in_channels=_base_.mage_vit_mini_arch.embed_dims),
)
precision = 'auto'
max_epochs = 2
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=True, begin=0, end=1, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 1, by_epoch=True, begin=1, end=max_epochs, eta_min=0.0,
         convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
