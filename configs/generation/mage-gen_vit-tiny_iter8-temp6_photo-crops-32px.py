# Tiny MAGE generator for CPU tests and the demo: the tiny MAGE of configs/_base_/models/mage_vit-tiny.py,
# the model of configs/mage/mage_vit-tiny_1xb8-20iters_photo-crops-32px.py (a checkpoint of that config loads
# here as is), 32x32 images (8x8 tokens), 8 decoding steps (the schedule is for 64 tokens instead of 256).
# The FID evaluation compares `fake_nums` samples with a folder of real images (data_root: the 32 px photo
# crops of tools/dataset_converters/prepare_photo_crops.py, the data of the tiny pretraining config),
# whose statistics are computed once and cached in fid_cache/ of the work dir (tools/test.py resolves it).
_base_ = ['../_base_/models/mage_vit-tiny.py', './_base_/mage-gen_default_runtime.py']

model = dict(
    type='MAGEGenerator',
    data_preprocessor=dict(_delete_=True, type='DataPreprocessor', mean=[0., 0., 0.], std=[255., 255., 255.],
                           output_channel_order='RGB'),
    num_iter=8,
    choice_temperature=6.0,
    schedule='cosine',
)

data_root = 'data/tiny_images'  # tools/dataset_converters/prepare_photo_crops.py data/tiny_images --size 32
test_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,  # no workers to keep (OpenMMLab's tools/train.py defaults it to True)
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
             stats_cache_dir='fid_cache', batch_size=8, sample_model='orig'),
    ])
env_cfg = dict(dist_cfg=dict(backend='gloo'))
model_wrapper_cfg = dict(type='MMDistributedDataParallel', device_ids=None, broadcast_buffers=False)
