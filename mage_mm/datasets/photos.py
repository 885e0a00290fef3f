"""Real photographs shipped inside installed packages, for tests and demos offline.

No download happens: the photos are files inside wheels that the environment
already has (scikit-image sample data, foolbox's 20 ImageNet validation
images with their class ids, scikit-learn and matplotlib samples).
"""
import glob
import importlib.util
import os
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image


def _package_dir(name: str) -> Optional[str]:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return list(spec.submodule_search_locations)[0]


def packaged_photo_paths() -> List[str]:
    """Paths of the natural colour photos found in installed packages (sorted, deterministic)."""
    paths: List[str] = []
    skimage = _package_dir('skimage')
    if skimage:
        for name in ('astronaut.png', 'chelsea.png', 'coffee.png', 'rocket.jpg', 'motorcycle_left.png',
                     'motorcycle_right.png'):
            paths.append(osp.join(skimage, 'data', name))
    foolbox = _package_dir('foolbox')
    if foolbox:
        paths += sorted(glob.glob(osp.join(foolbox, 'data', 'imagenet_*.jpg')))
    sklearn = _package_dir('sklearn')
    if sklearn:
        paths += [osp.join(sklearn, 'datasets', 'images', n) for n in ('china.jpg', 'flower.jpg')]
    mpl = _package_dir('matplotlib')
    if mpl:
        paths.append(osp.join(mpl, 'mpl-data', 'sample_data', 'grace_hopper.jpg'))
    return [p for p in paths if osp.isfile(p)]


def imagenet_label(path: str) -> Optional[int]:
    """ImageNet class id of a foolbox sample (``imagenet_07_559.jpg`` → 559), else None."""
    stem = osp.splitext(osp.basename(path))[0].split('_')
    if len(stem) == 3 and stem[0] == 'imagenet' and stem[2].isdigit():
        return int(stem[2])
    return None


def random_crops(paths: Sequence[str], num_crops: int, size: int, short_side: int = 256,
                 seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """``num_crops`` RGB crops (N, size, size, 3) uint8 spread over ``paths``, with source indices.

    Each photo is resized so its short side is ``short_side``, then square crops
    of a random size in [size, short_side] are taken and resized to ``size``.
    """
    if not paths:
        raise FileNotFoundError('no packaged photos found; install scikit-image and foolbox==3.3.4 '
                                '(tools/install_env.sh does)')
    rng = np.random.default_rng(seed)
    photos = []
    for p in paths:
        im = Image.open(p).convert('RGB')
        s = short_side / min(im.size)
        photos.append(im.resize((max(short_side, round(im.size[0] * s)), max(short_side, round(im.size[1] * s))),
                                Image.BICUBIC))
    crops, sources = [], []
    for i in range(num_crops):
        src = i % len(photos)
        im = photos[src]
        side = int(rng.integers(size, min(im.size) + 1))
        x, y = int(rng.integers(0, im.size[0] - side + 1)), int(rng.integers(0, im.size[1] - side + 1))
        crop = im.crop((x, y, x + side, y + side)).resize((size, size), Image.BICUBIC)
        crops.append(np.asarray(crop))
        sources.append(src)
    return np.stack(crops), np.asarray(sources)


def write_image_folder(images: np.ndarray, out_dir: str, labels: Optional[Sequence[int]] = None,
                       prefix: str = 'img') -> List[str]:
    """Write (N, H, W, 3) uint8 images as PNGs; with labels, into ``out_dir/<label>/``."""
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for i, img in enumerate(images):
        sub = out_dir if labels is None else osp.join(out_dir, f'{int(labels[i]):03d}')
        os.makedirs(sub, exist_ok=True)
        path = osp.join(sub, f'{prefix}_{i:05d}.png')
        Image.fromarray(img).save(path)
        written.append(path)
    return written
