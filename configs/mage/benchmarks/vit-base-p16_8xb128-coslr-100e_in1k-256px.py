# MAGE ViT-B fine-tuning on ImageNet-1k, 256 px, total batch 1024 (8 GPUs x 128; the official run used
# 32 x 32), the official recipe (LTH14/mage main_finetune.py, README command):
# * MAGEViT with its frozen tokenizer, global pool (mean of image tokens, no final norm) + trainable
#   fc_norm, drop path 0.1 (linear over depth), token-embedding dropout 0.1, no other dropout;
# * linear head (trunc-normal std 2e-5), label smoothing 0.1 applied to the Mixup 0.8 / CutMix 1.0 targets
#   (one of the two per batch, prob 1);
# * AdamW (0.9, 0.999), wd 0.05 (none on 1-D tensors), lr = 2.5e-4 * 1024 / 256 = 1e-3, layer-wise decay
#   0.65 (token embedding 0.65^13 ... blocks.i 0.65^(12-i) ... head 1), 5 warm-up epochs, cosine to
#   1e-6 x layer scale, 100 epochs, no gradient clipping, AMP;
# * train: RandomResizedCrop 256 (0.2-1, bicubic) + flip + RandAugment rand-m9-mstd0.5-inc1 (fill = ImageNet
#   mean), no random erasing; eval: Resize 292 + CenterCrop 256.
# The official script normalises with the ImageNet mean/std for augmentation and de-normalises back to
# [0, 1] after mixup, because the tokenizer takes [0, 1]. Mixup/CutMix commute with a per-channel affine map
# and RandAugment works on uint8 pixels, so here the data preprocessor produces [0, 1] (mean 0, std 255)
# and mixes there: the model sees the same tensors (tests/test_benchmarks.py checks the equivalence).
_base_ = ['./_base_/vit-base-p16_finetune.py', '../../_base_/datasets/imagenet_mage-cls-256px.py']

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=256, crop_ratio_range=(0.2, 1.0), backend='pillow',
         interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    # timm rand-m9-mstd0.5-inc1; images are BGR here, the fill is the ImageNet mean (timm's img_mean)
    dict(type='RandAugment', policies='timm_increasing', num_policies=2, total_level=10, magnitude_level=9,
         magnitude_std=0.5, hparams=dict(pad_val=[104, 116, 124], interpolation='bicubic')),
    dict(type='PackInputs'),
]
train_dataloader = dict(batch_size=128, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(batch_size=128)
test_dataloader = val_dataloader
# the official evaluation runs under torch.cuda.amp.autocast (fp16), as its training
val_cfg = dict(fp16=True)
test_cfg = dict(fp16=True)
