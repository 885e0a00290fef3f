"""Shared helpers of the generation tests: the tiny configs, a tiny checkpoint, real photo folders."""
import os
import os.path as osp
from typing import Optional

import torch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TINY_PRETRAIN_CFG = osp.join(ROOT, 'configs', 'mage', 'mage_vit-tiny_1xb8-20iters_photo-crops-32px.py')
TINY_GEN_CFG = osp.join(ROOT, 'configs', 'generation', 'mage-gen_vit-tiny_iter8-temp6_photo-crops-32px.py')


def save_random_tiny_checkpoint(path: str, seed: int = 0) -> str:
    """A *randomly initialised* MAGE of the tiny pretraining config, saved like a Runner checkpoint.

    Random weights are enough where only shapes, keys, determinism and the
    mechanics of decoding are under test (the images are noise).
    """
    from mmengine.config import Config
    from mmpretrain.registry import MODELS
    torch.manual_seed(seed)
    cfg = Config.fromfile(TINY_PRETRAIN_CFG)
    model = MODELS.build(dict(cfg.model, _scope_='mmpretrain'))
    model.init_weights()
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    torch.save(dict(state_dict=model.state_dict(), meta=dict(note='random init, tests only')), path)
    return path


def real_photo_folder(out_dir: str, num: int, size: int, seed: int = 0, sources: Optional[slice] = None) -> str:
    """``num`` real photo crops (size×size PNGs) from the photos shipped in installed packages."""
    from mage_mm.datasets import packaged_photo_paths, random_crops, write_image_folder
    paths = packaged_photo_paths()
    images, _ = random_crops(paths if sources is None else paths[sources], num, size, seed=seed)
    write_image_folder(images, out_dir)
    return out_dir
