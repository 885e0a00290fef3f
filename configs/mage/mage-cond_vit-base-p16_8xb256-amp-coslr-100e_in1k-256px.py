# Class-conditional MAGE ViT-B/16 (MAGECond) on ImageNet-1k 256 px, fine-tuned from the released
# unconditional MAGE ViT-B. The official repository has no class-conditional code; what the paper's
# appendix and its author (LTH14/mage#16) state, and what is ours:
#   paper : a separate class embedding (1000 classes) fed to the decoder; the pretrained encoder is frozen;
#           the encoder keeps its constant fake-class slot; fine-tuned from the unconditional model.
#   ours  : the class vector is added to every decoder input token (class_injection='add'), zero-initialised
#           (a fresh model equals the unconditional one), + 1 null class with label dropout p_uncond=0.1 for
#           classifier-free guidance; frozen encoder in eval mode; 100 epochs, total batch 2048 (8 x 256),
#           AdamW (0.9, 0.95) wd 0.05, lr 1.5e-4 x 2048 / 256 (the pretraining rule), 5 warm-up epochs,
#           cosine to 0, clip 3.0, fp16 AMP; the pretraining augmentation (RandomResizedCrop 0.2-1 + flip).
# Unconditional checkpoint: the official MAGE ViT-B converted with
#   python tools/model_converters/mage_to_mmpretrain.py mage-vitb-1600.pth checkpoints/mage_vit-base_official.pth
# (or any mage_mm MAGE ViT-B pretraining checkpoint); it is loaded strictly, only the class embedding is new.
#   bash tools/dist_train.sh THIS_CONFIG 8
_base_ = [
    '../_base_/models/mage_vit-base-p16.py',
    '../_base_/datasets/imagenet_bs512_mage-256px.py',
    '../_base_/default_runtime.py',
]
num_classes = 1000
model = dict(
    type='MAGECond',
    num_classes=num_classes,
    p_uncond=0.1,
    train_encoder=False,
    init_checkpoint='checkpoints/mage_vit-base_official.pth',
    neck=dict(num_classes=num_classes, class_injection='add'),
)
# labelled ImageNet: data_root/train/<wnid>/<image> (class ids = sorted folder names, as the classifiers')
train_dataloader = dict(batch_size=256, dataset=dict(with_label=True))

base_lr = 1.5e-4
total_batch_size = 2048
max_epochs = 100
optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=base_lr * total_batch_size / 256, betas=(0.9, 0.95), weight_decay=0.05),
    clip_grad=dict(max_norm=3.0),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0, flat_decay_mult=0.0,
                       custom_keys={'neck.class_embed': dict(decay_mult=0.0)}),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=True, begin=0, end=5, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 5, by_epoch=True, begin=5, end=max_epochs, eta_min=0.0,
         convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
auto_scale_lr = dict(base_batch_size=total_batch_size)
default_hooks = dict(checkpoint=dict(type='MAGECheckpointHook', interval=10, max_keep_ckpts=3))
resume = True
