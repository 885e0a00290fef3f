"""Build a :class:`MAGEGenerator` from a config and checkpoint; image helpers for the tools."""
import math
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.config import Config
from PIL import Image

from ...utils.checkpoint import safe_load


def _state_dict(checkpoint: dict, path: str) -> Dict[str, torch.Tensor]:
    sd = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ValueError(f'{path} is not a state dict nor an mmengine checkpoint with a "state_dict" entry')
    sd = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in sd.items()}
    if not any(k.startswith('backbone.') for k in sd):
        hint = (' It looks like an official MAGE checkpoint: convert it with '
                'tools/model_converters/mage_to_mmpretrain.py first.') if any(
                    k.startswith(('blocks.', 'vqgan.', 'token_emb.')) for k in sd) else ''
        raise ValueError(f'{path} has no backbone.* weights; expected a MAGE checkpoint '
                         f'(backbone./neck./head./target_generator.).{hint}')
    return sd


def load_generator_checkpoint(model: torch.nn.Module, path: str) -> None:
    """Load a MAGE checkpoint strictly, with an error that names what does not fit."""
    sd = _state_dict(safe_load(path, map_location='cpu'), path)
    own = model.state_dict()
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    mismatched = [f'{k}: checkpoint {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}'
                  for k in sorted(set(sd) & set(own)) if sd[k].shape != own[k].shape]
    if missing or unexpected or mismatched:
        parts = []
        if mismatched:
            tok = [m for m in mismatched if m.startswith('target_generator.')]
            what = 'tokenizer/model size mismatch' if tok else 'size mismatch'
            parts.append(f'{what} ({len(mismatched)}): ' + '; '.join(mismatched[:4]))
        if missing:
            parts.append(f'missing in checkpoint ({len(missing)}): {", ".join(missing[:6])}')
        if unexpected:
            parts.append(f'not in the model ({len(unexpected)}): {", ".join(unexpected[:6])}')
        raise ValueError(f'checkpoint {path} does not fit the config\'s MAGEGenerator: ' + ' | '.join(parts))
    model.load_state_dict(sd, strict=True)


def init_generator(config: Union[str, Config], checkpoint: Optional[str] = None, device: str = 'cpu',
                   cfg_options: Optional[dict] = None):
    """Build the config's ``MAGEGenerator`` (mmagic registry), load ``checkpoint`` strictly, eval mode.

    Args:
        config (str | Config): A generation config (``configs/generation/``).
        checkpoint (str, optional): A MAGE checkpoint (mage_mm pretraining or
            converted official). None keeps the initial weights.
        device (str): Defaults to ``'cpu'``.
        cfg_options (dict, optional): Overrides merged into the config.
    """
    import mage_mm.models.generators  # noqa: F401  registers MAGEGenerator in mmagic
    from mmagic.registry import MODELS
    if checkpoint is not None and not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {checkpoint}')
    cfg = Config.fromfile(config) if isinstance(config, str) else config
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    model_cfg = dict(cfg.model)
    if model_cfg.get('type') != 'MAGEGenerator':
        raise ValueError(f"config model type is {model_cfg.get('type')!r}; use a configs/generation/ config "
                         '(type=MAGEGenerator)')
    model_cfg['_scope_'] = 'mmagic'
    model = MODELS.build(model_cfg)
    if checkpoint is not None:
        load_generator_checkpoint(model, checkpoint)
    model.cfg = cfg
    return model.to(device).eval()


def to_uint8(images01: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) RGB in [0, 1] → (B, H, W, 3) uint8, truncating like the official script."""
    return np.clip(images01.permute(0, 2, 3, 1).cpu().numpy() * 255, 0, 255).astype(np.uint8)


def save_png(image: np.ndarray, path: str) -> None:
    """Write atomically (a temporary file renamed), so an interrupted run leaves no partial image."""
    tmp = f'{path}.tmp{os.getpid()}.png'
    Image.fromarray(image).save(tmp)
    os.replace(tmp, path)


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


def load_rgb01(path: str) -> torch.Tensor:
    """An image file → (1, 3, H, W) RGB float in [0, 1]."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'image not found: {path}')
    arr = np.asarray(Image.open(path).convert('RGB'), dtype=np.float32) / 255.0
    return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0).contiguous()


def load_mask(path: str) -> torch.Tensor:
    """A mask image → (1, 1, H, W) uint8, 1 where the pixel is nonzero (mmagic's LoadMask rule)."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'mask not found: {path}')
    arr = np.asarray(Image.open(path).convert('L'))
    return torch.from_numpy((arr > 0).astype(np.uint8))[None, None]


__all__: List[str] = ['init_generator', 'load_generator_checkpoint', 'to_uint8', 'save_png', 'image_grid',
                      'load_rgb01', 'load_mask']
