# Official MAGE recipe: AdamW (0.9, 0.95), wd 0.05 (none on 1-D tensors and biases),
# lr = 1.5e-4 * total_batch / 256, 40 warm-up epochs from 0, half-cycle cosine to 0 per iteration,
# gradient clipping at global norm 3.0, fp16 AMP (attention in fp32, see MAGEViT.fp32_attention).
base_lr = 1.5e-4
total_batch_size = 4096
optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=base_lr * total_batch_size / 256, betas=(0.9, 0.95), weight_decay=0.05),
    clip_grad=dict(max_norm=3.0),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0, flat_decay_mult=0.0),
)

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=True, begin=0, end=40, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=1560, by_epoch=True, begin=40, end=1600, eta_min=0.0,
         convert_to_iter_based=True),
]

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=1600)
# `tools/train.py --auto-scale-lr` rescales the lr linearly when the real batch differs
auto_scale_lr = dict(base_batch_size=total_batch_size)
