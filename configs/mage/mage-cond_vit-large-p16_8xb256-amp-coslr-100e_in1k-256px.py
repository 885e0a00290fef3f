# Class-conditional MAGE ViT-L/16 (MAGECond) on ImageNet-1k 256 px, fine-tuned from the released
# unconditional MAGE ViT-L; the recipe (paper-stated parts and our choices) of the ViT-B config, with the
# ViT-L sizes of ../_base_/models/mage_vit-large-p16.py (encoder 1024/24/16, decoder 1024/8/16).
# Unconditional checkpoint: tools/model_converters/mage_to_mmpretrain.py mage-vitl-1600.pth
#   checkpoints/mage_vit-large_official.pth
_base_ = ['./mage-cond_vit-base-p16_8xb256-amp-coslr-100e_in1k-256px.py']
model = dict(
    backbone=dict(arch='l'),
    neck=dict(in_channels=1024, embed_dims=1024),
    head=dict(in_channels=1024, embed_dims=1024),
    init_checkpoint='checkpoints/mage_vit-large_official.pth',
)
