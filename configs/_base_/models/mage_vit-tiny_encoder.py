# The tiny MAGEViT encoder every tiny config shares (pretraining, generation, linear probe, fine-tune,
# detection): 2 blocks of 64-d, 4 heads, MLP 256, over the 8x8 = 64 tokens of the 'tiny' MAGEVQGAN (factor
# 4 at 32 px) with 256 codes. Only variables, no `model`: this file sits in `_base_` beside a full-size recipe
# (whose `model` it would otherwise collide with), and a config takes the settings as
#   backbone=dict(type='MAGEViT', **_base_.mage_vit_tiny)                       (a new backbone), or
#   backbone=dict(_base_.mage_vit_tiny, arch=dict(_delete_=True, **_base_.mage_vit_tiny.arch), ...)
# (over a full-size backbone whose `arch` is a name such as 'b').
codebook_size = 256
mage_vit_tiny = dict(
    arch=dict(embed_dims=64, num_layers=2, num_heads=4, feedforward_channels=256),
    codebook_size=codebook_size,
    num_legacy_class_ids=1,  # a fresh model needs only one non-code id for the class slot
    fake_class_id=codebook_size,
    token_grid=8,
)
