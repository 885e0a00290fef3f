# Official MAGE FID protocol (README of LTH14/mage): generated 256x256 images vs the 50,000 ImageNet
# validation images after Resize(256) (short side, PIL bilinear) + CenterCrop(256); TF Inception
# 2015-12-05 features (TF1 bilinear resize to 299). The reference statistics are computed once
# from `real_folder` (or by tools/analysis_tools/fid_reference_stats.py) and stored in `reference_stats`.
# The dataloader only gives the loop its batch size; the metric reads the folder itself.
data_root = 'data/imagenet/val'
reference_stats = 'data/fid_stats/imagenet-val_resize256-crop256_tf-inception.npz'

test_dataloader = dict(
    batch_size=32,  # the official generation batch
    num_workers=4,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='BasicImageDataset',
        data_root=data_root,
        data_prefix=dict(gt=''),
        pipeline=[dict(type='LoadImageFromFile', key='gt'), dict(type='PackInputs')]),
)
metrics = [
    dict(type='LocalInceptionFID', prefix='FID-50k', fake_nums=50000, reference_stats=reference_stats,
         real_folder=data_root, real_resize=256, real_crop=256, sample_model='orig'),
]
test_evaluator = dict(type='Evaluator', metrics=metrics)
