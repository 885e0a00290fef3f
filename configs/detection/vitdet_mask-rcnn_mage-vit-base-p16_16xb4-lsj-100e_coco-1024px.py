# Mask R-CNN (ViTDet recipe) with a MAGE ViT-B/16 backbone on COCO, 1024 px LSJ, 100 epochs, batch 64
# (16 GPUs x 4; --auto-scale-lr for other totals). The official MAGE repository has no detection transfer:
# this is our recipe. Reference point: mmdet's ViTDet Mask R-CNN with an MAE ViT-B reaches 51.6 box AP /
# 45.7 mask AP on COCO val with the same schedule; no MAGE number has been measured yet.
# Backbone: the MAGE encoder (window attention 16x16 = the pretraining token grid, global blocks 2/5/8/11,
# position table 16x16 -> 64x64 bicubic), the class slot kept, drop path 0.1, no dropout; the frozen VQGAN
# tokenizer at 1024 px.
_base_ = ['./_base_/mask-rcnn_mage-vitdet.py', './_base_/lsj-100e_coco-instance.py']

# a mage_mm pretraining checkpoint, or an official one converted by tools/model_converters/mage_to_mmpretrain.py
pretrained = 'checkpoints/mage_vit-base-p16_in1k-256px_mmpretrain.pth'
model = dict(
    backbone=dict(
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')))
