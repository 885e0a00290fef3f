# Runtime of the MAGE generation configs: mmagic scope (MultiTestLoop, metrics, inferencers),
# mage_mm's mmpretrain parts plus the mmagic generator and the offline FID metric.
# (mage_mm.compat: the version-gated shims of mage_mm/compat.py)
custom_imports = dict(imports=['mage_mm.compat', 'mage_mm.register', 'mage_mm.models.generators.mage_generator',
                               'mage_mm.evaluation.metrics'], allow_failed_imports=False)
default_scope = 'mmagic'

# seeds of the generated images are drawn from torch's global RNG: different per rank
randomness = dict(seed=0, diff_rank_seed=True)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
)
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)
log_processor = dict(type='LogProcessor', by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False

# evaluation: generate `fake_nums` images through the sampler of mmagic's generative metrics
test_cfg = dict(type='MultiTestLoop')
