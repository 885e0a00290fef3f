"""The pure part of the precision switch (names → dtypes, validation, autocast contexts).

Models import this module (no mmengine registries here); the config mapping and the
loops/optim-wrapper registration live in :mod:`mage_mm.engine.precision`.
"""
import contextlib
import functools
import warnings
from typing import Callable, Iterator, Optional, Sequence

import torch

PRECISIONS = ('fp32', 'bf16', 'fp16')
#: what a config key or a tool flag may say: a precision, or 'auto' (:func:`resolve_precision`)
PRECISION_CHOICES = PRECISIONS + ('auto', )
TOKENIZER_PRECISIONS = ('fp32', 'follow')
_DTYPES = dict(fp32=None, bf16=torch.bfloat16, fp16=torch.float16)


def device_type_of(device=None) -> str:
    """``'cpu'`` / ``'cuda'`` / ... of a device, a device string, or mmengine's current device when None."""
    if device is None:
        from mmengine.device import get_device
        device = get_device()
    return torch.device(device).type


@functools.lru_cache(maxsize=None)
def native_bf16(device_type: str = 'cpu') -> bool:
    """Whether ``device_type`` runs bf16 matmuls in hardware.

    CPU: oneDNN's own check (AVX512-BF16 or AMX; without them bf16 is emulated: 0.3 against 125 GFLOP/s fp32
    for a 2048² matmul on an AVX2-only AMD Zen 3, measured). CUDA: ``torch.cuda.is_bf16_supported()``.
    """
    if device_type == 'cuda':
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device_type != 'cpu':
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch build without oneDNN
        return False


def resolve_precision(precision: str, device_type: str = 'cpu') -> str:
    """``'auto'`` → ``'bf16'`` where the device runs bf16 natively (:func:`native_bf16`), else ``'fp32'``;
    any other name is returned as it is.

    ``'auto'`` is the fast path on every machine: bf16 where it is fast, the faithful fp32 where bf16 would be
    emulated (there it is far slower than fp32, not faster).
    """
    if precision == 'auto':
        return 'bf16' if native_bf16(device_type) else 'fp32'
    return precision


_warned_emulated = set()


def check_precision(precision: str, device_type: str = 'cpu', training: bool = False) -> str:
    """Validate ``precision`` for a device; returns it, ``'auto'`` resolved (:func:`resolve_precision`).

    Warns (once per process) when bf16 is asked for on a CPU that only emulates it; on a CUDA device without
    bf16 it is an error.

    Args:
        precision (str): ``'fp32'``, ``'bf16'``, ``'fp16'`` or ``'auto'``.
        device_type (str): ``'cpu'`` or ``'cuda'``. Defaults to ``'cpu'``.
        training (bool): fp16 training needs loss scaling, which only CUDA's
            ``AmpOptimWrapper`` has. Defaults to False.

    Raises:
        ValueError: unknown name, or a dtype the device does not support.
    """
    if precision not in PRECISION_CHOICES:
        raise ValueError(f'precision must be one of {PRECISION_CHOICES}; got {precision!r}')
    precision = resolve_precision(precision, device_type)
    if precision == 'bf16' and device_type == 'cpu' and not native_bf16('cpu') and 'cpu' not in _warned_emulated:
        _warned_emulated.add('cpu')
        warnings.warn("precision='bf16' on a CPU without native bf16 (oneDNN finds no AVX512-BF16 / AMX): bf16 "
                      "is emulated there and runs far slower than fp32; precision='auto' picks fp32 on such a CPU",
                      stacklevel=2)
    if precision == 'fp16' and device_type == 'cpu' and training:
        raise ValueError("precision='fp16' training needs CUDA (loss scaling); use 'bf16' on CPU")
    if precision == 'bf16' and device_type == 'cuda' and torch.cuda.is_available() \
            and not torch.cuda.is_bf16_supported():
        raise ValueError("this CUDA device does not support bfloat16; use precision='fp16'")
    return precision


def autocast_dtype(precision: str) -> Optional[torch.dtype]:
    """torch dtype of a precision name (None for fp32); ``'auto'`` must be resolved first."""
    if precision == 'auto':
        raise ValueError("precision 'auto' depends on the device: resolve it first (resolve_precision)")
    if precision not in PRECISIONS:
        raise ValueError(f'precision must be one of {PRECISIONS}; got {precision!r}')
    return _DTYPES[precision]


@contextlib.contextmanager
def precision_context(precision: str = 'fp32', device_type: str = 'cpu') -> Iterator[None]:
    """``torch.autocast(device_type, dtype)`` for bf16/fp16; nothing for fp32 (an outer autocast stays).

    ``'auto'`` is resolved for ``device_type`` (:func:`resolve_precision`).
    """
    dtype = autocast_dtype(resolve_precision(precision, device_type))
    if dtype is None:
        yield
        return
    with torch.autocast(device_type=device_type, dtype=dtype):
        yield


def fp32_context(device_type: str = 'cpu') -> contextlib.AbstractContextManager:
    """Autocast switched off (exact fp32) on ``device_type``, whatever an outer context enabled."""
    return torch.autocast(device_type=device_type, enabled=False)


def autocast_callable(fn: Callable[..., torch.Tensor], precision: str, device_type: str) -> Callable[..., torch.Tensor]:
    """``fn`` run under :func:`precision_context`, its tensor output cast back to fp32 (feature extractors)."""
    precision = resolve_precision(precision, device_type)
    if autocast_dtype(precision) is None:
        return fn

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        with precision_context(precision, device_type):
            out = fn(*args, **kwargs)
        return out.float() if isinstance(out, torch.Tensor) and out.is_floating_point() else out

    return wrapped


def compile_network(model: torch.nn.Module, parts: Sequence[str] = ('backbone', 'neck', 'head'), **kwargs) -> None:
    """``torch.compile`` a MAGE model's network modules in place (``nn.Module.compile``: same state-dict keys).

    The tokenizer is left eager (its decode checks id ranges; it runs once per image in generation).
    """
    for name in parts:
        module = getattr(model, name, None)
        if module is not None:
            module.compile(**kwargs)


__all__ = ['PRECISIONS', 'PRECISION_CHOICES', 'TOKENIZER_PRECISIONS', 'device_type_of', 'native_bf16',
           'resolve_precision', 'check_precision', 'autocast_dtype',
           'precision_context', 'fp32_context', 'autocast_callable', 'compile_network']
