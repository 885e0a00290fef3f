# MAGE ViT-B/16 (official `mage_vit_base_patch16`): encoder 768/12/12, decoder 768/8/16.
model = dict(
    type='MAGE',
    data_preprocessor=dict(
        type='SelfSupDataPreprocessor', mean=[0., 0., 0.], std=[255., 255., 255.], to_rgb=True),
    backbone=dict(
        type='MAGEViT', arch='b', drop_rate=0.1, attn_drop_rate=0.1,
        # the frozen tokenizer sits in the backbone (checkpoint keys backbone.tokenizer.*, as in every model
        # that contains it); converted `vqgan_jax_strongaug.ckpt` (tools/model_converters/mage_to_mmpretrain.py)
        tokenizer=dict(
            type='MAGEVQGAN', arch='official',
            init_cfg=dict(type='Pretrained', checkpoint='checkpoints/vqgan_jax_strongaug_mmpretrain.pth'))),
    neck=dict(
        type='MAGEPretrainDecoder', num_tokens=256, in_channels=768, embed_dims=768, num_layers=8,
        num_heads=16, mlp_ratio=4., drop_rate=0.1, attn_drop_rate=0.1),
    head=dict(type='MAGEPretrainHead', in_channels=768, embed_dims=768, vocab_size=2025, codebook_size=1024,
              label_smoothing=0.1),
)
