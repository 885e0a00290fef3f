# MAGE ViT-L/16 (official `mage_vit_large_patch16`): encoder 1024/24/16, decoder 1024/8/16.
_base_ = './mage_vit-base-p16.py'
model = dict(
    backbone=dict(arch='l'),
    neck=dict(in_channels=1024, embed_dims=1024),
    head=dict(in_channels=1024, embed_dims=1024),
)
