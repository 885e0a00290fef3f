# The demo's generator (tools/demo.sh): the "mini" MAGE of
# configs/mage/mage_vit-mini_1xb64-3000iters_fashion-mnist-tokens-k8-32px.py (a checkpoint of it loads here as is),
# 32x32 images (8x8 tokens), 16 decoding steps, choice temperature 1 instead of the official 4.5-6 (for 256
# tokens), candidates sampled at temperature 0.9 instead of the official 1, and the arccos mask schedule instead
# of the official cosine (more tokens fixed in the early steps). Chosen on the training split
# (FID of 100 samples against 500 training images, never the test split):
#   8 steps, sampling temperature 1, choice temperature 4.5 / 2 / 1 / 0.5 / 0.25: 225 / 213 / 194 / 194 / 193
#   (an earlier tokenizer); with the 2026-12-02 demo tokenizer, choice temperature 1:
#   steps / sampling temperature  8 / 1: 195   8 / 0.8: 179   8 / 0.6: 173   12 / 0.7: 173
#                                16 / 1: 179  16 / 0.9: 173  16 / 0.8: 167  16 / 0.6: 171   24 / 0.8: 171
#   16 / 0.8 at choice temperature 2 / 0.5: 173 / 173.
#   (the 1000-iteration mini of earlier versions); re-checked for the 3000-iteration mini, choice temperature 1:
#   16 / 0.8: 157.5  16 / 0.9: 159.6  16 / 1: 160.2  16 / 0.7: 162.7  16 / 0.75: 162.0  16 / 0.85: 159.9
#   12 / 0.8: 160.6  20 / 0.8: 160.9  24 / 0.9: 160.3; 16 / 0.8 at choice temperature 2 / 0.5: 158.1 / 175.1.
#   The mask schedule (2026-12-03, the 3000-iteration mini trained in fp32 on an AVX2-only CPU; a fixed reference of
#   500 training images disjoint from the demo's floor images; seeds 0 / 5000), 16 steps / 0.8, choice temperature 1:
#   cosine 173.7 / 166.1, linear 158.7 / 155.4, arccos 157.1 / 153.4; arccos at 16 / 0.9: 152.8 / 154.9, at 16 / 1:
#   155.8, at 12 / 0.8: 159.3, at 24 / 0.8: 167.3; linear at 16 / 0.9: 156.6; top-k 64: 176.2; per-sample mask
#   lengths: unchanged (173.7).
# Decoding in bf16 where the CPU/GPU runs it natively, else fp32 (precision 'auto'; logits cast to fp32 before
# sampling).
_base_ = ['./mage-gen_vit-tiny_iter8-temp6_photo-crops-32px.py', '../_base_/models/mage_vit-mini_encoder.py']

model = dict(
    backbone=dict(arch=dict(_base_.mage_vit_mini_arch)),
    neck=dict(in_channels=_base_.mage_vit_mini_arch.embed_dims, **_base_.mage_mini_decoder),
    head=dict(in_channels=_base_.mage_mini_decoder.embed_dims, embed_dims=_base_.mage_vit_mini_arch.embed_dims),
    num_iter=16,
    choice_temperature=1.0,
    sampling_temperature=0.9,
    schedule='arccos',
)
precision = 'auto'
