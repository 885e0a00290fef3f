# The views of MAGE-C pretraining (OUR CHOICE, untuned: the official repository has no MAGE-C training code;
# see configs/mage/mage-c_vit-base-p16_8xb256-amp-coslr-1600e_in1k-256px.py): MAGE's own crop + flip, then
# SimCLR-style colour jitter (brightness/contrast/saturation 0.4, p 0.8; no hue jitter because mmcv's
# adjust_hue overflows under numpy 2 for negative shifts) and grayscale (p 0.2), no blur. Only the
# `view_pipeline` variable: a MAGE-C config puts this file in `_base_` beside its MAGE config and wraps the
# views in `MultiView(num_views=2)`; the tiny one replaces the crop size.
view_pipeline = [
    dict(type='RandomResizedCrop', scale=256, crop_ratio_range=(0.2, 1.0), backend='pillow',
         interpolation='bilinear'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomApply', prob=0.8,
         transforms=[dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4, hue=0.0)]),
    dict(type='RandomGrayscale', prob=0.2, keep_channels=True, channel_weights=(0.114, 0.587, 0.2989)),
]
