"""The pure part of the precision switch (names → dtypes, validation, autocast contexts).

Models import this module (no mmengine registries here); the config mapping and the
loops/optim-wrapper registration live in :mod:`mage_mm.engine.precision`.
"""
import contextlib
import functools
from typing import Callable, Iterator, Optional, Sequence

import torch

PRECISIONS = ('fp32', 'bf16', 'fp16')
TOKENIZER_PRECISIONS = ('fp32', 'follow')
_DTYPES = dict(fp32=None, bf16=torch.bfloat16, fp16=torch.float16)


def device_type_of(device=None) -> str:
    """``'cpu'`` / ``'cuda'`` / ... of a device, a device string, or mmengine's current device when None."""
    if device is None:
        from mmengine.device import get_device
        device = get_device()
    return torch.device(device).type


def check_precision(precision: str, device_type: str = 'cpu', training: bool = False) -> str:
    """Validate ``precision`` for a device; returns it.

    Args:
        precision (str): ``'fp32'``, ``'bf16'`` or ``'fp16'``.
        device_type (str): ``'cpu'`` or ``'cuda'``. Defaults to ``'cpu'``.
        training (bool): fp16 training needs loss scaling, which only CUDA's
            ``AmpOptimWrapper`` has. Defaults to False.

    Raises:
        ValueError: unknown name, or a dtype the device does not support.
    """
    if precision not in PRECISIONS:
        raise ValueError(f'precision must be one of {PRECISIONS}; got {precision!r}')
    if precision == 'fp16' and device_type == 'cpu' and training:
        raise ValueError("precision='fp16' training needs CUDA (loss scaling); use 'bf16' on CPU")
    if precision == 'bf16' and device_type == 'cuda' and torch.cuda.is_available() \
            and not torch.cuda.is_bf16_supported():
        raise ValueError("this CUDA device does not support bfloat16; use precision='fp16'")
    return precision


def autocast_dtype(precision: str) -> Optional[torch.dtype]:
    """torch dtype of a precision name (None for fp32)."""
    if precision not in PRECISIONS:
        raise ValueError(f'precision must be one of {PRECISIONS}; got {precision!r}')
    return _DTYPES[precision]


@contextlib.contextmanager
def precision_context(precision: str = 'fp32', device_type: str = 'cpu') -> Iterator[None]:
    """``torch.autocast(device_type, dtype)`` for bf16/fp16; nothing for fp32 (an outer autocast stays)."""
    dtype = autocast_dtype(precision)
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


__all__ = ['PRECISIONS', 'TOKENIZER_PRECISIONS', 'device_type_of', 'check_precision', 'autocast_dtype',
           'precision_context', 'fp32_context', 'autocast_callable', 'compile_network']
