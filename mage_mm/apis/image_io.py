"""Image helpers of the generation tools: tensors to uint8, atomic PNG writes, grids, image and mask files."""
import math
import os.path as osp
from typing import List, Optional, Sequence

import numpy as np
import torch
from PIL import Image


def to_uint8(images01: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) RGB in [0, 1] → (B, H, W, 3) uint8, truncating like the official script."""
    return np.clip(images01.permute(0, 2, 3, 1).cpu().numpy() * 255, 0, 255).astype(np.uint8)


def save_png(image: np.ndarray, path: str) -> None:
    """Write atomically (a temporary file renamed), so an interrupted run leaves no partial image."""
    from ..utils.atomic import atomic_path
    with atomic_path(path) as tmp:  # fsync + rename; refuses a symlink at the target
        Image.fromarray(image).save(tmp)  # the format follows the suffix (kept by the temporary name)


def image_grid(images: Sequence[np.ndarray], ncols: Optional[int] = None, pad: int = 2) -> np.ndarray:
    """Tile (H, W, 3) uint8 images into one grid with ``pad`` white pixels between them."""
    if not images:
        raise ValueError('no images for the grid')
    n = len(images)
    ncols = ncols or int(math.ceil(math.sqrt(n)))
    nrows = int(math.ceil(n / ncols))
    h, w = images[0].shape[:2]
    grid = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad, 3), 255, np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, ncols)
        grid[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = img
    return grid


def _open(path: str, mode: str) -> Image.Image:
    """Decode a whole image file; a corrupt or truncated one is an error that names it (PIL's does not)."""
    try:
        with Image.open(path) as img:
            return img.convert(mode)
    except (OSError, SyntaxError, ValueError) as err:
        raise ValueError(f'cannot read image {path}: {err}') from None


def load_rgb01(path: str) -> torch.Tensor:
    """An image file → (1, 3, H, W) RGB float in [0, 1]."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'image not found: {path}')
    arr = np.asarray(_open(path, 'RGB'), dtype=np.float32) / 255.0
    return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0).contiguous()


def load_mask(path: str) -> torch.Tensor:
    """A mask image → (1, 1, H, W) uint8, 1 where the pixel is nonzero (mmagic's LoadMask rule)."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'mask not found: {path}')
    arr = np.asarray(_open(path, 'L'))
    return torch.from_numpy((arr > 0).astype(np.uint8))[None, None]


__all__: List[str] = ['to_uint8', 'save_png', 'image_grid', 'load_rgb01', 'load_mask']
