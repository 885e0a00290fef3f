"""Train a mage_mm model with the mmengine Runner (mmpretrain's tools/train.py flags).

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp] [--auto-scale-lr]
        [--no-validate] [--cfg-options k=v ...] [--launcher none|pytorch|slurm|mpi]
"""
import argparse
import os
import os.path as osp
import sys
from copy import deepcopy

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from mmengine.config import Config, ConfigDict  # noqa: E402
from mmengine.runner import Runner  # noqa: E402
from mmengine.utils import digit_version  # noqa: E402
from mmengine.utils.dl_utils import TORCH_VERSION  # noqa: E402

import mage_mm.compat  # noqa: E402,F401  the version-gated shims of mage_mm/compat.py (as configs do)
from mage_mm.datasets import wrap_datasets  # noqa: E402
from mage_mm.engine.hooks import MAGECheckpointHook, NonFiniteTrainingError  # noqa: E402
from mage_mm.engine.runner_checks import (  # noqa: E402
    check_config_keys,
    check_load_from,
    check_resume,
    setup_auto_scale_lr,
    use_safe_checkpoint_hook,
)
from mage_mm.utils.cfg_options import SafeDictAction  # noqa: E402  keys that cannot inject code


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from this checkpoint, or from the latest one in the work dir when '
                        'no path is given')
    parser.add_argument('--amp', action='store_true', help='enable automatic-mixed-precision training')
    from mage_mm.engine.precision import add_precision_args  # one switch for every tool
    add_precision_args(parser, training=True, compile_flag=True)
    parser.add_argument('--no-validate', action='store_true', help='do not validate during training')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the lr linearly with the real total batch size')
    parser.add_argument('--no-pin-memory', action='store_true', help='set pin_memory=False in dataloaders')
    parser.add_argument('--no-persistent-workers', action='store_true',
                        help='set persistent_workers=False in dataloaders')
    parser.add_argument('--cfg-options', nargs='+', action=SafeDictAction,
                        help='override settings of the config, e.g. model.backbone.drop_rate=0.0')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def merge_args(cfg: Config, args) -> Config:
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])

    if args.amp:
        optim_wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if optim_wrapper not in ('OptimWrapper', 'AmpOptimWrapper'):
            raise ValueError(f'--amp needs an OptimWrapper or AmpOptimWrapper, the config has {optim_wrapper}')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        if not osp.isfile(args.resume):
            raise FileNotFoundError(f'--resume checkpoint not found: {args.resume}')
        cfg.resume = True
        cfg.load_from = args.resume

    if args.no_validate:
        cfg.val_cfg = None
        cfg.val_dataloader = None
        cfg.val_evaluator = None

    if args.auto_scale_lr:
        setup_auto_scale_lr(cfg)  # the tiny configs have no auto_scale_lr: their own batch is the base

    def set_loader(key, value):
        for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            loader = cfg.get(name, None)
            if isinstance(loader, (dict, ConfigDict)) and loader.get('num_workers', 0) > 0:
                loader[key] = value

    if args.no_pin_memory:
        set_loader('pin_memory', False)
    if args.no_persistent_workers:
        set_loader('persistent_workers', False)

    # torch.compile only where it exists
    if cfg.get('compile', False) and digit_version(TORCH_VERSION) < digit_version('2.0.0'):
        raise RuntimeError('compile=True needs torch>=2.0')

    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.amp and (args.precision or cfg.get('precision', None)):
        raise ValueError('give either --amp or a precision (--precision / the config key), not both')
    from mage_mm.engine.precision import apply_precision
    apply_precision(cfg, getattr(args, 'precision', None), getattr(args, 'tokenizer_precision', None),
                    attention_precision=getattr(args, 'attention_precision', None),
                    fused_optimizer=getattr(args, 'fused_optimizer', None))
    if getattr(args, 'compile', None):  # torch.compile of the network modules (mage_mm.engine.CompileNetworkHook)
        cfg.custom_hooks = list(cfg.get('custom_hooks', None) or []) + [dict(type='CompileNetworkHook')]
    return cfg


def main(argv=None):
    args = parse_args(argv)
    from mage_mm.utils.allocator import tune_malloc_for_tools
    tune_malloc_for_tools()  # glibc malloc tunables (README "Performance"); MAGE_MM_MALLOC=0/1 overrides the default
    cfg = Config.fromfile(args.config)
    cfg = merge_args(cfg, args)
    # fail at start, naming the culprit (mmengine would ignore, warn, or fail hours in)
    check_config_keys(cfg)
    check_resume(cfg.work_dir, args.resume)
    use_safe_checkpoint_hook(cfg)
    wrap_datasets(cfg)  # every image file is checked when the loaders are built, before the first iteration
    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        from mmengine.registry import RUNNERS
        runner = RUNNERS.build(deepcopy(cfg))
    if cfg.get('load_from') and not cfg.get('resume') and cfg.get('load_from_strict', True):
        check_load_from(runner.model, cfg.load_from)
    try:
        runner.train()
    except FloatingPointError as err:
        hook = next((h for h in runner.hooks if isinstance(h, MAGECheckpointHook)), None)
        if hook is None or isinstance(err, NonFiniteTrainingError):
            raise
        # a model's own non-finite-loss stop (raised before the update): name the last good checkpoint
        failed = runner.iter + 1
        raise NonFiniteTrainingError(f'training stopped at iteration {failed}: {err}. '
                                     f'{hook.describe_last_good(failed_iter=failed)}') from err


if __name__ == '__main__':
    main()
