"""Checks that make ``tools/train.py`` / ``tools/test.py`` fail at start, naming the culprit, instead of training wrong.

* :func:`check_config_keys`: a misspelt top-level key (``load_form``,
  ``train_dataloder``) is silently ignored by mmengine's ``Runner.from_cfg``;
  here it is an error.
* :func:`check_resume`: ``--resume`` with nothing to resume starts from scratch
  in mmengine; here it is an error (and a ``last_checkpoint`` pointing at a
  missing file too).
* :func:`check_load_from`: mmengine loads ``load_from`` with ``strict=False``,
  so a tokenizer checkpoint given to MAGE trains from scratch with a log
  warning; here the keys and shapes must match.
* :func:`use_safe_checkpoint_hook`: a plain ``CheckpointHook`` becomes
  :class:`~mage_mm.engine.hooks.MAGECheckpointHook` (same options).
* :func:`setup_auto_scale_lr`: ``--auto-scale-lr`` on a config without
  ``auto_scale_lr`` (the tiny ones) uses the config's own batch as the base.
"""
import difflib
import glob
import os.path as osp
from typing import Iterable, Optional

from mmengine.config import Config, ConfigDict

# what mmengine's Runner.from_cfg / FlexibleRunner and the OpenMMLab tools read
RUNNER_KEYS = frozenset({
    'model', 'work_dir', 'train_dataloader', 'val_dataloader', 'test_dataloader', 'train_cfg', 'val_cfg', 'test_cfg',
    'auto_scale_lr', 'optim_wrapper', 'param_scheduler', 'val_evaluator', 'test_evaluator', 'default_hooks',
    'custom_hooks', 'data_preprocessor', 'load_from', 'resume', 'launcher', 'env_cfg', 'log_processor', 'log_level',
    'visualizer', 'default_scope', 'randomness', 'experiment_name', 'model_wrapper_cfg', 'runner_type',
    'custom_imports', 'compile', 'strategy', 'cfg', 'gpu_ids', 'dist_params', 'activation_checkpointing',
    'efficient_conv_bn_eval', 'vis_backends', 'backend_args', 'dataset_type', 'data_root', 'metainfo',
    'train_pipeline', 'val_pipeline', 'test_pipeline', 'tta_model', 'tta_pipeline', 'file_client_args',
    'inferencer', 'img_norm_cfg',
})
# variables of the mage_mm configs themselves, the precision switch, and the escape hatch below
OUR_KEYS = frozenset({
    'base_lr', 'lr', 'min_lr', 'codebook_size', 'embed_dims', 'num_classes', 'image_size', 'interval', 'max_iters',
    'max_epochs', 'total_batch_size', 'pretrained', 'tokenizer_checkpoint', 'reference_stats', 'dynamic_intervals',
    'metrics', 'norm_cfg', 'mage_vit_tiny', 'view_pipeline', 'precision', 'tokenizer_precision', 'load_from_strict',
    'config_variables', 'image_check', 'token_cache', 'batch_size', 'warmup_epochs', 'warmup_iters', 'layer_decay',
    'drop_path_rate', 'ratio', 'attention_precision', 'fused_optimizer',
})


class ConfigKeyError(KeyError):
    """A top-level config key that nothing reads."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


def check_config_keys(cfg: Config, allowed: Iterable[str] = ()) -> None:
    """Refuse top-level keys that neither mmengine, the tools nor our configs read.

    A config may declare its own helper variables with
    ``config_variables = ['my_var', ...]``. Names starting with ``_`` are private
    helpers and always allowed.

    Args:
        cfg (Config): The merged config (after ``--cfg-options``).
        allowed (Iterable[str]): More allowed names. Defaults to ().

    Raises:
        ConfigKeyError: Naming each unknown key, the closest known one, and the fix.
    """
    extra = set(cfg.get('config_variables', None) or []) | set(allowed)
    known = RUNNER_KEYS | OUR_KEYS | extra
    unknown = sorted(k for k in cfg.keys() if k not in known and not k.startswith('_'))
    if not unknown:
        return
    parts = []
    for key in unknown:
        close = difflib.get_close_matches(key, sorted(RUNNER_KEYS | OUR_KEYS), n=1, cutoff=0.6)
        parts.append(f'{key!r}' + (f' (did you mean {close[0]!r}?)' if close else ''))
    where = f' in {cfg.filename}' if getattr(cfg, 'filename', None) else ''
    raise ConfigKeyError(f'unknown top-level config key(s){where}: {", ".join(parts)}. mmengine would ignore '
                         'them silently. Fix the spelling, or declare helper variables with '
                         "config_variables = ['name', ...] in the config.")


def check_resume(work_dir: str, resume: Optional[str]) -> Optional[str]:
    """Resolve ``--resume`` and refuse to start from scratch when there is nothing to resume.

    Args:
        work_dir (str): The run's work dir.
        resume (str, optional): ``'auto'`` (``--resume`` without a path), a
            checkpoint path, or None (no resume).

    Returns:
        str | None: The checkpoint that will be resumed.

    Raises:
        FileNotFoundError: Nothing to resume, naming the work dir (and any
            ``*.pth`` there that could be given explicitly).
    """
    if resume is None:
        return None
    if resume != 'auto':
        if not osp.isfile(resume):
            raise FileNotFoundError(f'--resume checkpoint not found: {resume}')
        return resume
    marker = osp.join(work_dir, 'last_checkpoint')
    found = sorted(p for p in glob.glob(osp.join(work_dir, '*.pth')))
    hint = (f'; checkpoints there: {", ".join(osp.basename(p) for p in found[-3:])} '
            '(give one with --resume PATH)') if found else ''
    if not osp.isfile(marker):
        raise FileNotFoundError(f'--resume: nothing to resume in {work_dir} (no last_checkpoint file){hint}. '
                                'Drop --resume to start a new run.')
    with open(marker) as f:
        target = f.read().strip()
    if not target or not osp.isfile(target):
        raise FileNotFoundError(f'--resume: {marker} names {target!r}, which does not exist{hint}')
    return target


def use_safe_checkpoint_hook(cfg: Config) -> bool:
    """Swap a plain mmengine ``CheckpointHook`` for ``MAGECheckpointHook`` (same options); True if swapped."""
    hooks = cfg.get('default_hooks', None) or {}
    ckpt = hooks.get('checkpoint', None)
    if isinstance(ckpt, (dict, ConfigDict)) and ckpt.get('type') in ('CheckpointHook', 'mmengine.CheckpointHook'):
        ckpt['type'] = 'MAGECheckpointHook'
        return True
    return False


def setup_auto_scale_lr(cfg: Config) -> None:
    """Enable ``auto_scale_lr``; without one in the config the base is the config's own batch.

    The base batch is ``total_batch_size`` when the config defines it, otherwise
    ``train_dataloader.batch_size`` (the lr of a ``1xbN`` config is for one
    process of N).
    """
    scale = cfg.get('auto_scale_lr', None)
    if not isinstance(scale, (dict, ConfigDict)) or 'base_batch_size' not in scale:
        base = cfg.get('total_batch_size', None) or cfg.train_dataloader.batch_size
        cfg.auto_scale_lr = dict(base_batch_size=int(base))
    cfg.auto_scale_lr['enable'] = True


def check_load_from(model, filename: str) -> None:
    """``load_from`` must fit the model: the same keys and shapes (mmengine would load ``strict=False``).

    Args:
        model (nn.Module): The built model (a wrapper is unwrapped).
        filename (str): The checkpoint.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: Missing, unexpected or mis-shaped keys, naming the file and the first keys.
    """
    from mmengine.model import is_model_wrapper

    from ..utils.checkpoint import compare_state_dicts, safe_load
    if not osp.isfile(filename):
        raise FileNotFoundError(f'load_from checkpoint not found: {filename}')
    ckpt = safe_load(filename, map_location='cpu')
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f'load_from {filename} holds no state dict')
    state = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()}
    model = model.module if is_model_wrapper(model) else model
    fit = compare_state_dicts(model.state_dict(), state)
    if fit.fits:
        return
    problems = fit.problems(type(model).__name__)
    hint = ''
    if not fit.num_shared:
        prefixes = sorted({k.split('.')[0] + '.' for k in state})[:5]
        hint = (f' No key matches: this is a checkpoint of another model (its keys start with {", ".join(prefixes)}).'
                ' To initialise a part of the model from it, use that part\'s init_cfg with a prefix instead.')
    raise ValueError(f'load_from {filename} does not fit {type(model).__name__}: ' + '; '.join(problems) + '.'
                     + hint + ' Set load_from_strict=False to load what matches anyway (mmengine\'s behaviour).')
