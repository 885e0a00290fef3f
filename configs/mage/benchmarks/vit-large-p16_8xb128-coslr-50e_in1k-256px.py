# MAGE ViT-L fine-tuning on ImageNet-1k: the ViT-B recipe with 50 epochs, layer decay 0.75, drop path 0.2
# (official README note for ViT-L).
_base_ = ['./vit-base-p16_8xb128-coslr-100e_in1k-256px.py']

pretrained = 'checkpoints/mage_vit-large-p16_in1k-256px_mmpretrain.pth'
model = dict(
    backbone=dict(
        arch='l', drop_path_rate=0.2,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    head=dict(in_channels=1024),
)
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.75))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=True, begin=0, end=5, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=45, by_epoch=True, begin=5, end=50, eta_min_ratio=1e-6 / 1e-3,
         convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=50)
# the official evaluation runs under torch.cuda.amp.autocast (fp16), as its training
val_cfg = dict(fp16=True)
test_cfg = dict(fp16=True)
