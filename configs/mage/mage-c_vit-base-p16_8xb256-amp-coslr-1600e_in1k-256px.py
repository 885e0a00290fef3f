# MAGE-C ViT-B pretraining (MAGE + contrastive loss on the encoder output), ImageNet-1k, 256 px.
# The official repository released MAGE-C checkpoints but no training code, and the paper's MAGE-C
# hyper-parameters could not be checked here. Everything below that is not plain MAGE is OUR CHOICE and
# untuned:
# * two views per image, 8 GPUs x 256 images x 2 views = 4096 views per step (the token budget of MAGE's
#   batch 4096, so the MAGE lr is kept);
# * views = MAGE's crop + flip plus SimCLR-style colour jitter (brightness/contrast/saturation 0.4, p 0.8;
#   no hue jitter because mmcv's adjust_hue overflows under numpy 2 for negative shifts) and grayscale
#   (p 0.2), no blur;
# * pooled feature = mean of the kept image tokens of the masked encoder output (after the final norm);
# * projector = 2-layer MLP 768-2048-256 with BN (SyncBN; last BN without affine);
# * NT-Xent (SimCLR) with temperature 0.2 over the global batch; contrastive weight 0.1.
# The MAGE part (masking, decoder, loss, optimiser, schedule) is the official recipe.
_base_ = ['./mage_vit-base-p16_8xb512-amp-coslr-1600e_in1k-256px.py', '../_base_/datasets/mage-c_views-256px.py']

model = dict(
    type='MAGEC',
    projector=dict(type='NonLinearNeck', in_channels=768, hid_channels=2048, out_channels=256, num_layers=2,
                   with_avg_pool=False, with_last_bn_affine=False, norm_cfg=dict(type='SyncBN')),
    contrastive_head=dict(type='ContrastiveHead', loss=dict(type='CrossEntropyLoss'), temperature=0.2),
    contrastive_weight=0.1,
    pool='kept',
)

# two views per image, each the MAGE-C view pipeline (MAGE's crop + flip, colour jitter, grayscale)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='MultiView', num_views=2, transforms=[_base_.view_pipeline]),
    dict(type='PackInputs'),
]
train_dataloader = dict(batch_size=256, dataset=dict(pipeline=train_pipeline))
# the recipe's lr belongs to 2048 images (4096 views) per step; --auto-scale-lr counts images
auto_scale_lr = dict(base_batch_size=2048)
