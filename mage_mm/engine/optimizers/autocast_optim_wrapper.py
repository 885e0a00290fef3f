"""An optim wrapper that autocasts the forward pass on CPU (registered as ``CPUAutocastOptimWrapper``)."""
import contextlib
from typing import Iterator, Union

import torch
import torch.nn as nn
from mmengine.optim import OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class CPUAutocastOptimWrapper(OptimWrapper):
    """``OptimWrapper`` whose ``optim_context`` enters ``torch.autocast('cpu', dtype)``.

    mmengine's ``AmpOptimWrapper`` asserts a CUDA/NPU/MLU device, so bf16
    training on CPU needs this. bf16 has fp32's exponent range: no loss scaling
    (the backward, clipping and the optimizer step run on the fp32 master
    weights exactly as with ``OptimWrapper``). Registered in mmengine's root
    ``OPTIM_WRAPPERS``, so mmpretrain, mmdet and mmagic configs all find it.

    Args:
        dtype (str | torch.dtype): Autocast dtype. Defaults to ``'bfloat16'``
            (CPU autocast supports bfloat16; float16 is refused: it would need
            loss scaling).
        **kwargs: ``OptimWrapper`` arguments (``optimizer``, ``clip_grad``,
            ``accumulative_counts``).
    """

    def __init__(self, dtype: Union[str, torch.dtype] = 'bfloat16', **kwargs) -> None:
        super().__init__(**kwargs)
        if isinstance(dtype, str):
            if dtype not in ('bfloat16', 'bf16'):
                raise ValueError(f"CPUAutocastOptimWrapper supports dtype='bfloat16' only; got {dtype!r} "
                                 '(fp16 training needs CUDA and AmpOptimWrapper for loss scaling)')
            dtype = torch.bfloat16
        if dtype != torch.bfloat16:
            raise ValueError(f'CPUAutocastOptimWrapper supports torch.bfloat16 only; got {dtype}')
        self.cast_dtype = dtype

    @contextlib.contextmanager
    def optim_context(self, model: nn.Module) -> Iterator[None]:
        with super().optim_context(model), torch.autocast(device_type='cpu', dtype=self.cast_dtype):
            yield
