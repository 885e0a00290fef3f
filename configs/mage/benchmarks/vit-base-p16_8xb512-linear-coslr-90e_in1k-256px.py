# MAGE ViT-B linear probe on ImageNet-1k, 256 px, total batch 4096 (8 GPUs x 512; the official run used
# 32 x 128), the official protocol (LTH14/mage main_linprobe.py --global_pool, blr 0.1):
# * frozen MAGEViT with its tokenizer (images in [0, 1] -> VQGAN tokens -> encoder); features = mean of the
#   image tokens of the last block without the final norm, then a fresh frozen identity LayerNorm (fc_norm);
#   in train mode the token-embedding dropout 0.1 stays active (official), the blocks have no dropout;
# * BatchNorm1d without affine (eps 1e-6) + linear head (trunc-normal std 0.01), cross-entropy;
# * LARS (the official update rule, MAGELARS), lr = 0.1 * 4096 / 256 = 1.6, wd 0, momentum 0.9;
#   90 epochs, 10 warm-up, half-cycle cosine to 0 per iteration;
# * train: single-draw RandomResizedCrop 256 (0.2-1, bicubic) + flip; eval: Resize 292 + CenterCrop 256.
# Weights: a mage_mm pretraining checkpoint (tools/train.py configs/mage/mage_vit-base-*.py) or an official
# one converted with tools/model_converters/mage_to_mmpretrain.py: the ViT and its tokenizer are read from its
# "backbone." entries (the tokenizer's are "backbone.tokenizer.", in every model that contains it).
_base_ = ['./_base_/vit-base-p16_linear-probe.py', '../../_base_/datasets/imagenet_mage-cls-256px.py']

# ImageFolder layout, as the official scripts: data_root/{train,val}/<class>/<image>
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCropNoRetry', scale=256, crop_ratio_range=(0.2, 1.0), backend='pillow',
         interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
train_dataloader = dict(batch_size=512, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(batch_size=512)
test_dataloader = val_dataloader
# the official evaluation runs under torch.cuda.amp.autocast (fp16), as its training
val_cfg = dict(fp16=True)
test_cfg = dict(fp16=True)
