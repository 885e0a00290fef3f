# Tiny MAGE generator for CPU tests and the demo: the architecture of
# configs/mage/mage_vit-tiny_1xb8-20iters_photo-crops-32px.py (a checkpoint of that config loads here as is),
# 32x32 images (8x8 tokens), 8 decoding steps (the schedule is for 64 tokens instead of 256).
# The FID evaluation compares `fake_nums` samples with a folder of real images (data_root: the 32 px photo
# crops of tools/dataset_converters/prepare_photo_crops.py, the data of the tiny pretraining config),
# whose statistics are computed once and cached in work_dirs/fid_cache.
_base_ = ['./_base_/mage-gen_default_runtime.py']

codebook_size = 256
model = dict(
    type='MAGEGenerator',
    data_preprocessor=dict(type='DataPreprocessor', mean=[0., 0., 0.], std=[255., 255., 255.],
                           output_channel_order='RGB'),
    target_generator=dict(type='MAGEVQGAN', arch='tiny'),
    backbone=dict(
        type='MAGEViT',
        arch=dict(embed_dims=64, num_layers=2, num_heads=4, feedforward_channels=256),
        codebook_size=codebook_size,
        num_legacy_class_ids=1,
        fake_class_id=codebook_size,
        token_grid=8),
    neck=dict(type='MAGEPretrainDecoder', num_tokens=64, in_channels=64, embed_dims=32, num_layers=1,
              num_heads=4),
    head=dict(type='MAGEPretrainHead', in_channels=32, embed_dims=64, vocab_size=codebook_size + 2,
              codebook_size=codebook_size),
    num_iter=8,
    choice_temperature=6.0,
    schedule='cosine',
)

data_root = 'data/tiny_images'  # tools/dataset_converters/prepare_photo_crops.py data/tiny_images --size 32
test_dataloader = dict(
    batch_size=4,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='BasicImageDataset',
        data_root=data_root,
        data_prefix=dict(gt=''),
        pipeline=[dict(type='LoadImageFromFile', key='gt'), dict(type='PackInputs')]),
)
test_evaluator = dict(
    type='Evaluator',
    metrics=[
        dict(type='LocalInceptionFID', prefix='FID-8', fake_nums=8, real_folder=data_root,
             stats_cache_dir='work_dirs/fid_cache', batch_size=8, sample_model='orig'),
    ])
env_cfg = dict(dist_cfg=dict(backend='gloo'))
model_wrapper_cfg = dict(type='MMDistributedDataParallel', device_ids=None, broadcast_buffers=False)
