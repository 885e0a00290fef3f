"""Evaluate a checkpoint with the mmengine Runner (mmpretrain's tools/test.py flags).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE] [--cfg-options k=v ...]
        [--launcher none|pytorch|slurm|mpi]
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from mmengine.config import Config  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

import mage_mm.compat  # noqa: E402,F401  the version-gated shims of mage_mm/compat.py (as configs do)
from mage_mm.datasets import wrap_datasets  # noqa: E402
from mage_mm.engine.runner_checks import check_config_keys, check_load_from  # noqa: E402
from mage_mm.utils.cfg_options import SafeDictAction  # noqa: E402  keys that cannot inject code


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the directory to save the evaluation metrics')
    parser.add_argument('--out', help='dump the evaluation results (metrics) to this pickle/json file')
    parser.add_argument('--amp', action='store_true', help='enable automatic-mixed-precision test')
    from mage_mm.engine.precision import add_precision_args  # one switch for every tool
    add_precision_args(parser)
    parser.add_argument('--cfg-options', nargs='+', action=SafeDictAction,
                        help='override settings of the config')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def cache_dirs_in_work_dir(cfg: Config) -> None:
    """A relative ``stats_cache_dir`` of a metric (LocalInceptionFID) is a folder of the work dir, not of the
    directory the command runs from: nothing is written outside the work dir."""
    for key in ('test_evaluator', 'val_evaluator'):
        evaluator = cfg.get(key) or {}
        metrics = evaluator.get('metrics', evaluator) if isinstance(evaluator, dict) else evaluator
        for metric in metrics if isinstance(metrics, (list, tuple)) else [metrics]:
            folder = metric.get('stats_cache_dir') if isinstance(metric, dict) else None
            if folder and not osp.isabs(osp.expanduser(folder)):
                metric['stats_cache_dir'] = osp.join(cfg.work_dir, folder)


def main(argv=None):
    args = parse_args(argv)
    from mage_mm.utils.allocator import tune_malloc_for_tools
    tune_malloc_for_tools()  # glibc malloc tunables (README "Performance"); MAGE_MM_MALLOC=0/1 overrides the default
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {args.checkpoint}')
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    cache_dirs_in_work_dir(cfg)
    # fail at start, naming the culprit: a misspelt top-level key, an unreadable test image
    check_config_keys(cfg)
    wrap_datasets(cfg, keys=('test_dataloader', ))
    cfg.load_from = args.checkpoint
    if args.amp:
        cfg.test_cfg.fp16 = True
    from mage_mm.engine.precision import apply_precision
    apply_precision(cfg, args.precision, args.tokenizer_precision, training=False,
                    attention_precision=args.attention_precision)
    runner = Runner.from_cfg(cfg)
    if cfg.get('load_from_strict', True):
        check_load_from(runner.model, args.checkpoint)  # mmengine would load strict=False and test random weights
    metrics = runner.test()
    if args.out:
        from mmengine.fileio import dump
        dump(metrics, args.out)
    return metrics


if __name__ == '__main__':
    main()
