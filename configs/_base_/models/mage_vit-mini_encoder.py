# The "mini" MAGE of the demo (tools/demo.sh): wider and deeper than the tiny one of ./mage_vit-tiny_encoder.py
# (2 x 64-d encoder, 1 x 32-d decoder) so that its samples look like garments, small enough to pretrain in a few
# CPU minutes from a token cache in bf16. Same 'tiny' MAGEVQGAN (32 px -> 8x8 = 64 tokens, 256 codes).
# Only variables, no `model` (this file sits in `_base_` beside the tiny model, whose `codebook_size` it reuses):
#   backbone=dict(arch=dict(_base_.mage_vit_mini_arch)), neck=dict(**_base_.mage_mini_decoder, ...)
mage_vit_mini_arch = dict(embed_dims=192, num_layers=4, num_heads=3, feedforward_channels=768)
mage_mini_decoder = dict(embed_dims=128, num_layers=2, num_heads=4)
config_variables = ['mage_vit_mini_arch', 'mage_mini_decoder']  # helpers, not Runner keys (runner_checks)
