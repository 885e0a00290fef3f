# The demo's generator (tools/demo.sh): the "mini" MAGE of
# configs/mage/mage_vit-mini_1xb64-1000iters_fashion-mnist-tokens-k8-32px.py (a checkpoint of it loads here as is),
# 32x32 images (8x8 tokens), 8 decoding steps, choice temperature 1 instead of the official 4.5-6 (for 256 tokens):
# chosen on the training split (FID of 100 samples against 500 training images, not the floor's: temperature
# 4.5 / 2 / 1 / 0.5 / 0.25 gave 225 / 213 / 194 / 194 / 193; 12 steps at 0.5: 193). Decoding in bf16 (logits
# cast to fp32 before sampling).
_base_ = ['./mage-gen_vit-tiny_iter8-temp6_photo-crops-32px.py', '../_base_/models/mage_vit-mini_encoder.py']

model = dict(
    backbone=dict(arch=dict(_base_.mage_vit_mini_arch)),
    neck=dict(in_channels=_base_.mage_vit_mini_arch.embed_dims, **_base_.mage_mini_decoder),
    head=dict(in_channels=_base_.mage_mini_decoder.embed_dims, embed_dims=_base_.mage_vit_mini_arch.embed_dims),
    num_iter=8,
    choice_temperature=1.0,
)
precision = 'bf16'
