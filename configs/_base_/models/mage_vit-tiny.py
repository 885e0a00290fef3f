# Tiny MAGE for CPU tests and the demo: the 'tiny' MAGEVQGAN (32 channels, factor 4: 32 px -> 8x8 = 64 tokens,
# 256 codes), the tiny MAGEViT encoder of ./mage_vit-tiny_encoder.py (2 x 64-d) and a 1-layer 32-d decoder.
# Images in [0, 1] RGB as the full-size models (./mage_vit-base-p16.py). The tiny pretraining and generation
# configs both take their model from here, so a checkpoint of one loads into the other as is.
_base_ = ['./mage_vit-tiny_encoder.py']
model = dict(
    type='MAGE',
    data_preprocessor=dict(
        type='SelfSupDataPreprocessor', mean=[0., 0., 0.], std=[255., 255., 255.], to_rgb=True),
    # the frozen tokenizer sits in the backbone (checkpoint keys backbone.tokenizer.*)
    backbone=dict(type='MAGEViT', **_base_.mage_vit_tiny, tokenizer=dict(type='MAGEVQGAN', arch='tiny')),
    neck=dict(type='MAGEPretrainDecoder', num_tokens=64, in_channels=64, embed_dims=32, num_layers=1,
              num_heads=4),
    head=dict(type='MAGEPretrainHead', in_channels=32, embed_dims=64, vocab_size=_base_.codebook_size + 2,
              codebook_size=_base_.codebook_size),
)
