# Tiny ViTDet-style Mask R-CNN for CPU tests and the demo: the full recipe's model and LSJ pipeline at 64 px
# with the tiny MAGE of configs/mage/mage_vit-tiny_1xb8-20iters_photo-crops-32px.py ('tiny' tokenizer,
# factor 4: 64 px -> 16x16 tokens, its 8x8 position table interpolated; 2 blocks, block 0 with 8x8 windows,
# block 1 global). The backbone stride is 4, so the pyramid uses scale factors 1 ... 1/8 to keep strides 4-64.
# Data ("photo-coco"): a COCO-format folder of real-photo composites, a cat and a cup crop pasted on crops of
# the other packaged photos, 2 classes with exact boxes and masks:
#   python tools/dataset_converters/prepare_photo_coco.py data/tiny_coco --num-train 4 --num-val 2
_base_ = [
    './vitdet_mask-rcnn_mage-vit-base-p16_16xb4-lsj-100e_coco-1024px.py',
    '../_base_/models/mage_vit-tiny_encoder.py',
]

pretrained = 'work_dirs/mage_vit-tiny_1xb8-20iters_photo-crops-32px/iter_20.pth'
image_size = (64, 64)
embed_dims = _base_.mage_vit_tiny.arch.embed_dims
num_classes = 2
norm_cfg = dict(type='mmpretrain.LN2d', eps=1e-6, requires_grad=True)
model = dict(
    data_preprocessor=dict(batch_augments=[dict(type='BatchFixedSizePad', size=image_size, pad_mask=True)]),
    backbone=dict(
        _base_.mage_vit_tiny,
        arch=dict(_delete_=True, **_base_.mage_vit_tiny.arch),
        window_size=8,
        global_indices=[1],
        tokenizer=dict(arch='tiny'),  # weights: the backbone.tokenizer.* entries of `pretrained`
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(in_channels=embed_dims, out_channels=64, scale_factors=[1.0, 0.5, 0.25, 0.125]),
    rpn_head=dict(in_channels=64, feat_channels=64, anchor_generator=dict(scales=[2])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=64),
        bbox_head=dict(in_channels=64, conv_out_channels=64, fc_out_channels=128, num_classes=num_classes),
        mask_roi_extractor=dict(out_channels=64),
        mask_head=dict(num_convs=2, in_channels=64, conv_out_channels=64, num_classes=num_classes)),
    train_cfg=dict(rpn=dict(sampler=dict(num=64)), rpn_proposal=dict(nms_pre=200, max_per_img=100),
                   rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(rpn=dict(nms_pre=200, max_per_img=100), rcnn=dict(max_per_img=20)))

data_root = 'data/tiny_coco/'
metainfo = dict(classes=('cat', 'cup'))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomResize', scale=image_size, ratio_range=(0.5, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_type='absolute_range', crop_size=image_size, recompute_bbox=True,
         allow_negative_crop=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(type='Pad', size=image_size, pad_val=dict(img=(114, 114, 114))),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='Pad', size=image_size, pad_val=dict(img=(114, 114, 114))),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo, ann_file='annotations/train.json',
                 data_prefix=dict(img='images/'), filter_cfg=dict(filter_empty_gt=True, min_size=8),
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo, ann_file='annotations/val.json',
                 data_prefix=dict(img='images/'), pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/val.json')
test_evaluator = val_evaluator

optim_wrapper = dict(type='OptimWrapper', optimizer=dict(lr=1e-4))
max_iters = 4
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=2),
    dict(type='MultiStepLR', begin=0, end=max_iters, by_epoch=False, milestones=[3], gamma=0.1),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters, dynamic_intervals=None)
auto_scale_lr = dict(base_batch_size=2)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=max_iters, max_keep_ckpts=1),
                     visualization=dict(type='DetVisualizationHook', draw=False))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
log_processor = dict(window_size=1)
