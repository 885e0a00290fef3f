"""One precision switch for every entry point: ``fp32`` (faithful default), ``bf16``, ``fp16``, ``auto``.

A config says ``precision = 'bf16'`` (top level) or a tool gets ``--precision bf16``;
``'auto'`` is bf16 where the device runs it natively (a CUDA GPU with bf16, a CPU with
AVX512-BF16 or AMX) and fp32 elsewhere, where bf16 would be emulated and slower than
fp32 (:func:`~mage_mm.utils.precision.resolve_precision`; the config then records
the resolved name). :func:`apply_precision` maps the choice onto the parts of the
config that run the network:

* training: ``optim_wrapper`` becomes :class:`CPUAutocastOptimWrapper` on CPU
  (mmengine's ``AmpOptimWrapper`` refuses CPU) or mmengine's ``AmpOptimWrapper``
  with the dtype on CUDA (fp16 with dynamic loss scaling);
* validation / test: ``ValLoop`` / ``TestLoop`` become :class:`AutocastValLoop` /
  :class:`AutocastTestLoop`, which autocast to exactly that dtype;
* generation (``MAGEGenerator``): its ``precision`` argument (decoding steps
  and VQGAN decode under autocast).

Tokenising (image → ids) stays fp32 under every switch: :class:`MAGEVQGAN`
switches autocast off around encode/quantise, so the ids are exact. The top-level
key ``tokenizer_precision = 'follow'`` (tools: ``--tokenizer-precision follow``)
tokenises in the low precision too (``autocast_encode=True`` on every
``MAGEVQGAN`` of the model); ids then change (see README "Performance").

Without a ``precision`` key and without a flag nothing is changed: the config
runs as written (a full-size recipe's ``AmpOptimWrapper`` stays).

Two opt-in fast-path levers that deviate from the official computation (README
"Performance" gives their measured effect and tolerance), each a top-level key
and a tool flag, applied by :func:`apply_precision` whatever the precision:

* ``attention_precision = 'follow'`` (``--attention-precision follow``): attention
  runs in the autocast dtype (``fp32_attention=False`` on every ``MAGEViT`` /
  ``MAGEViTDet`` / ``MAGEPretrainDecoder``; on CPU with attention dropout, an explicit
  ``q·kᵀ`` → softmax → dropout → ``·v`` in that dtype instead of SDPA's math path).
  The official code keeps ``q·kᵀ`` in fp32 under AMP. Default ``'fp32'``.
* ``fused_optimizer = True`` (``--fused-optimizer``): ``fused=True`` on an Adam /
  AdamW / SGD ``optim_wrapper.optimizer`` (one vectorised kernel over all parameters
  instead of a Python loop of per-tensor ops; same update rule, fp32 rounding
  differences only). Other optimizers (LARS) are left as they are. Default False.
"""
from typing import Any, Iterator, Optional, Sequence

import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS, LOOPS
from mmengine.runner.loops import TestLoop, ValLoop, _update_losses

from ..utils.precision import (  # noqa: F401
    PRECISION_CHOICES,
    PRECISIONS,
    TOKENIZER_PRECISIONS,
    autocast_callable,
    autocast_dtype,
    check_precision,
    compile_network,
    device_type_of,
    fp32_context,
    native_bf16,
    precision_context,
    resolve_precision,
)

ATTENTION_PRECISIONS = ('fp32', 'follow')
# configs types whose constructor takes fp32_attention (MAGEViTDet passes it on to MAGEViT)
ATTENTION_TYPES = ('MAGEViT', 'MAGEViTDet', 'MAGEPretrainDecoder')
# torch optimizers with a fused implementation on CPU and CUDA (torch >= 2.4)
FUSED_OPTIMIZERS = ('Adam', 'AdamW', 'SGD')


def _walk_dicts(obj: Any) -> Iterator[dict]:
    if isinstance(obj, dict):
        yield obj
        for value in obj.values():
            yield from _walk_dicts(value)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            yield from _walk_dicts(value)


def set_tokenizer_precision(model_cfg: dict, tokenizer_precision: str) -> int:
    """Set ``autocast_encode`` on every ``MAGEVQGAN`` dict inside ``model_cfg``; returns how many."""
    if tokenizer_precision not in TOKENIZER_PRECISIONS:
        raise ValueError(f'tokenizer_precision must be one of {TOKENIZER_PRECISIONS}; got {tokenizer_precision!r}')
    count = 0
    for d in _walk_dicts(model_cfg):
        if d.get('type') == 'MAGEVQGAN':
            d['autocast_encode'] = tokenizer_precision == 'follow'
            count += 1
    return count


def set_attention_precision(model_cfg: dict, attention_precision: str) -> int:
    """Set ``fp32_attention`` on every ``ATTENTION_TYPES`` dict inside ``model_cfg``; returns how many.

    ``'fp32'`` (official): attention in fp32 under autocast; ``'follow'``: in the autocast dtype.
    """
    if attention_precision not in ATTENTION_PRECISIONS:
        raise ValueError(f'attention_precision must be one of {ATTENTION_PRECISIONS}; got {attention_precision!r}')
    count = 0
    for d in _walk_dicts(model_cfg):
        if d.get('type') in ATTENTION_TYPES:
            d['fp32_attention'] = attention_precision == 'fp32'
            count += 1
    return count


def set_fused_optimizer(optim_wrapper: dict, fused: bool) -> bool:
    """``fused=fused`` on the wrapper's optimizer when it is one of ``FUSED_OPTIMIZERS``; returns whether it was.

    A multi-optimizer config (:func:`is_multi_optim_wrapper`): on each sub-module's optimizer.
    """
    if isinstance(optim_wrapper, dict) and is_multi_optim_wrapper(optim_wrapper):
        hits = [set_fused_optimizer(v, fused) for k, v in optim_wrapper.items() if k not in MULTI_WRAPPER_KEYS]
        return any(hits)
    optimizer = optim_wrapper.get('optimizer', None) if isinstance(optim_wrapper, dict) else None
    if not isinstance(optimizer, dict) or optimizer.get('type') not in FUSED_OPTIMIZERS:
        return False
    if fused:
        optimizer['fused'] = True
        optimizer.pop('foreach', None)  # torch refuses fused together with foreach
    else:
        optimizer.pop('fused', None)
    return True


#: keys of a multi-optimizer ``optim_wrapper`` that are not a sub-module's wrapper
MULTI_WRAPPER_KEYS = ('constructor', 'paramwise_cfg')


def is_multi_optim_wrapper(optim_wrapper: dict) -> bool:
    """Whether ``optim_wrapper`` holds one wrapper per sub-module (mmagic's ``MultiOptimWrapperConstructor``).

    Such a config names the constructor and has no ``optimizer`` (or ``modules``) of its own: every other key is a
    sub-module's wrapper config (the VQGAN trainer's ``tokenizer`` / ``discriminator``).
    """
    constructor = str(optim_wrapper.get('constructor', ''))
    return (constructor.split('.')[-1] == 'MultiOptimWrapperConstructor' and 'optimizer' not in optim_wrapper
            and 'modules' not in optim_wrapper)


def optim_wrapper_for(optim_wrapper: dict, precision: str, device_type: str) -> dict:
    """The ``optim_wrapper`` config for a precision (a new dict; the optimizer etc. kept).

    fp32 → ``OptimWrapper``; bf16/fp16 on CPU → ``CPUAutocastOptimWrapper``;
    on CUDA → ``AmpOptimWrapper`` (``dtype``; fp16 with dynamic loss scaling). A multi-optimizer config
    (:func:`is_multi_optim_wrapper`) gets the same mapping in each sub-module's wrapper.
    """
    precision = check_precision(precision, device_type, training=True)
    cfg = dict(optim_wrapper)
    if is_multi_optim_wrapper(cfg):
        # mmagic's MultiOptimWrapperConstructor: one wrapper per sub-module, each gets the precision
        return {key: (value if key in MULTI_WRAPPER_KEYS else optim_wrapper_for(value, precision, device_type))
                for key, value in cfg.items()}
    kind = cfg.get('type', 'OptimWrapper')
    known = ('OptimWrapper', 'AmpOptimWrapper', 'CPUAutocastOptimWrapper')
    if kind not in known:
        raise ValueError(f'the precision switch handles optim_wrapper types {known}; the config has {kind!r}')
    for key in ('dtype', 'loss_scale'):
        cfg.pop(key, None)
    if precision == 'fp32':
        cfg['type'] = 'OptimWrapper'
    elif device_type == 'cpu':
        cfg.update(type='CPUAutocastOptimWrapper', dtype='bfloat16')
    else:
        cfg.update(type='AmpOptimWrapper', dtype='float16' if precision == 'fp16' else 'bfloat16',
                   loss_scale='dynamic')
    return cfg


def _loop_for(loop_cfg: Any, precision: str, kinds: Sequence[str], new_type: str) -> Any:
    if not isinstance(loop_cfg, dict):
        return loop_cfg
    kind = loop_cfg.get('type', kinds[0])
    if kind not in kinds:
        return loop_cfg  # other loops (mmagic's MultiTestLoop): the model carries the precision
    out = {k: v for k, v in loop_cfg.items() if k != 'fp16'}
    out.update(type=new_type, precision=precision)
    return out


def apply_precision(cfg, precision: Optional[str] = None, tokenizer_precision: Optional[str] = None,
                    device: Any = None, training: Optional[bool] = None, attention_precision: Optional[str] = None,
                    fused_optimizer: Optional[bool] = None):
    """Map the precision switch onto a config, in place; returns ``cfg``.

    Args:
        cfg (Config | dict): An mmengine config.
        precision (str, optional): Overrides the config's top-level
            ``precision``. Neither given: the config is left as written.
        tokenizer_precision (str, optional): Overrides the config's top-level
            ``tokenizer_precision`` (``'fp32'`` default, or ``'follow'``).
        device (optional): Device the run uses; defaults to mmengine's current one.
        training (bool, optional): Whether the optimizer wrapper is rewritten.
            Defaults to: when the config has an ``optim_wrapper``.
        attention_precision (str, optional): Overrides the config's top-level
            ``attention_precision`` (``'fp32'``: official; ``'follow'``).
        fused_optimizer (bool, optional): Overrides the config's top-level
            ``fused_optimizer`` (default False).
    """
    precision = precision if precision is not None else cfg.get('precision', None)
    tokenizer_precision = (tokenizer_precision if tokenizer_precision is not None
                           else cfg.get('tokenizer_precision', None))
    model = cfg.get('model', None)
    attention_precision = (attention_precision if attention_precision is not None
                           else cfg.get('attention_precision', None))
    if attention_precision is not None:
        cfg['attention_precision'] = attention_precision
        if isinstance(model, dict):
            set_attention_precision(model, attention_precision)
    fused_optimizer = fused_optimizer if fused_optimizer is not None else cfg.get('fused_optimizer', None)
    if fused_optimizer is not None:
        cfg['fused_optimizer'] = bool(fused_optimizer)
        if cfg.get('optim_wrapper', None) is not None:
            set_fused_optimizer(cfg['optim_wrapper'], bool(fused_optimizer))
    if tokenizer_precision is not None:
        cfg['tokenizer_precision'] = tokenizer_precision
        if isinstance(model, dict):
            set_tokenizer_precision(model, tokenizer_precision)
    if precision is None:
        return cfg
    device_type = device_type_of(device)
    training = cfg.get('optim_wrapper', None) is not None if training is None else training
    precision = check_precision(precision, device_type, training=training)  # 'auto' resolved for this device
    cfg['precision'] = precision
    if training and cfg.get('optim_wrapper', None) is not None:
        cfg['optim_wrapper'] = optim_wrapper_for(cfg['optim_wrapper'], precision, device_type)
    for key, kinds, new in (('val_cfg', ('ValLoop', 'AutocastValLoop'), 'AutocastValLoop'),
                            ('test_cfg', ('TestLoop', 'AutocastTestLoop'), 'AutocastTestLoop')):
        if cfg.get(key, None) is not None:
            cfg[key] = _loop_for(cfg[key], precision, kinds, new)
    if isinstance(model, dict) and model.get('type') in ('MAGEGenerator', 'MAGECondGenerator'):
        model['precision'] = precision
    return cfg


def add_precision_args(parser, training: bool = False, compile_flag: bool = False, attention_flag: bool = True) -> None:
    """``--precision``, ``--tokenizer-precision`` (and ``--compile``) on a parser: the same flags in every tool.

    ``--attention-precision`` where the tool runs MAGE attention (``attention_flag``), ``--fused-optimizer``
    where it trains (``training``).
    """
    parser.add_argument('--precision', choices=PRECISION_CHOICES, default=None,
                        help='fp32 (faithful default), bf16, fp16 (CUDA%s), or auto (bf16 where the device runs '
                        'it natively, else fp32); default: the config\'s `precision` key, else fp32'
                        % (' only for training' if training else ''))
    parser.add_argument('--tokenizer-precision', choices=TOKENIZER_PRECISIONS, default=None,
                        help='fp32 (default: token ids exact) or follow (tokenise in --precision too)')
    if attention_flag:
        parser.add_argument('--attention-precision', choices=ATTENTION_PRECISIONS, default=None,
                            help='fp32 (official: attention in fp32 under autocast) or follow (attention in '
                            '--precision too; a fast path, see README "Performance"); default: the config key, '
                            'else fp32')
    if training:
        parser.add_argument('--fused-optimizer', action='store_true', default=None,
                            help='fused=True on an Adam/AdamW/SGD optimizer (config key `fused_optimizer`)')
    if compile_flag:
        parser.add_argument('--compile', action='store_true', default=None,
                            help='torch.compile the network (config key `compile`; opt-in, see README "Performance")')


class _AutocastLoopMixin:
    """``run_iter`` of mmengine's Val/TestLoop with exactly the precision's autocast."""

    _step_name = 'val_step'
    _hook = 'val'

    @torch.no_grad()
    def run_iter(self, idx, data_batch: Sequence[dict]) -> None:
        self.runner.call_hook(f'before_{self._hook}_iter', batch_idx=idx, data_batch=data_batch)
        with precision_context(self.precision, device_type_of(None)):
            outputs = getattr(self.runner.model, self._step_name)(data_batch)
        losses_attr = f'{self._hook}_loss'
        outputs, losses = _update_losses(outputs, getattr(self, losses_attr))
        setattr(self, losses_attr, losses)
        self.evaluator.process(data_samples=outputs, data_batch=data_batch)
        self.runner.call_hook(f'after_{self._hook}_iter', batch_idx=idx, data_batch=data_batch, outputs=outputs)


@LOOPS.register_module()
class AutocastValLoop(_AutocastLoopMixin, ValLoop):
    """mmengine ``ValLoop`` whose steps run under :func:`precision_context` (``precision`` arg)."""

    def __init__(self, runner, dataloader, evaluator, precision: str = 'fp32') -> None:
        super().__init__(runner, dataloader, evaluator, fp16=False)
        self.precision = check_precision(precision, device_type_of(None))


@LOOPS.register_module()
class AutocastTestLoop(_AutocastLoopMixin, TestLoop):
    """mmengine ``TestLoop`` whose steps run under :func:`precision_context` (``precision`` arg)."""

    _step_name = 'test_step'
    _hook = 'test'

    def __init__(self, runner, dataloader, evaluator, precision: str = 'fp32') -> None:
        super().__init__(runner, dataloader, evaluator, fp16=False)
        self.precision = check_precision(precision, device_type_of(None))



@HOOKS.register_module()
class CompileNetworkHook(Hook):
    """``torch.compile`` the model's network modules (backbone, neck, head) before training (``--compile``).

    mmengine's own ``compile=True`` compiles the whole ``train_step``, optimizer
    step included, which torch 2.13's dynamo cannot trace on this model; the
    modules are what is worth compiling. The tokenizer stays eager.

    Args:
        parts (Sequence[str]): Attribute names of the modules. Defaults to
            ``('backbone', 'neck', 'head')``.
        options (dict, optional): ``torch.compile`` keyword arguments.
    """

    priority = 'VERY_LOW'

    def __init__(self, parts: Sequence[str] = ('backbone', 'neck', 'head'), options: Optional[dict] = None) -> None:
        self.parts = tuple(parts)
        self.options = dict(options or {})

    def before_train(self, runner) -> None:
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        compile_network(model, self.parts, **self.options)


__all__ = ['PRECISIONS', 'PRECISION_CHOICES', 'TOKENIZER_PRECISIONS', 'ATTENTION_PRECISIONS', 'native_bf16',
           'resolve_precision', 'set_attention_precision',
           'set_fused_optimizer', 'check_precision', 'autocast_dtype', 'precision_context',
           'fp32_context', 'autocast_callable', 'set_tokenizer_precision', 'optim_wrapper_for', 'apply_precision',
           'add_precision_args', 'device_type_of', 'AutocastValLoop', 'AutocastTestLoop', 'CompileNetworkHook']
