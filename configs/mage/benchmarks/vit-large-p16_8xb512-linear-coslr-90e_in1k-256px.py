# MAGE ViT-L linear probe on ImageNet-1k: the ViT-B protocol with blr 0.05 (lr 0.8 at batch 4096).
_base_ = ['./vit-base-p16_8xb512-linear-coslr-90e_in1k-256px.py']

pretrained = 'checkpoints/mage_vit-large-p16_in1k-256px_mmpretrain.pth'
model = dict(
    backbone=dict(
        arch='l', frozen_stages=24,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(input_features=1024),
    head=dict(in_channels=1024),
)
optim_wrapper = dict(optimizer=dict(lr=0.05 * 4096 / 256))
# the official evaluation runs under torch.cuda.amp.autocast (fp16), as its training
val_cfg = dict(fp16=True)
test_cfg = dict(fp16=True)
