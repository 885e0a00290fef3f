# Runtime shared by every mage_mm config (mmpretrain scope, plugin import).
# mage_mm.compat: the version-gated shims of mage_mm/compat.py (safe checkpoint loading, CPU gloo init)
custom_imports = dict(imports=['mage_mm.compat', 'mage_mm.register'], allow_failed_imports=False)
default_scope = 'mmpretrain'

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=100),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # mmengine's CheckpointHook + atomic saves, safe rotation, random states for exact resume, non-finite stop
    checkpoint=dict(type='MAGECheckpointHook', interval=1, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='VisualizationHook', enable=False),
)

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='UniversalVisualizer', vis_backends=vis_backends)

log_level = 'INFO'
load_from = None
resume = False
# one masking ratio per iteration *per process*, as the official code
randomness = dict(seed=0, diff_rank_seed=True)
