"""Fashion-MNIST from Debian's ``dataset-fashion-mnist`` package as an ImageNet-style RGB folder.

The package (MIT licence, Zalando Research) installs the four original IDX
files under ``/usr/share/datasets/fashion-mnist``. We read them with numpy,
replicate the grey channel to RGB, resize to the demo size and write
``<out>/{train,test}/<label>_<class>/<split>_<index>.png`` plus mmpretrain
annotation files ``<out>/meta/{train,test}.txt`` (``<class dir>/<file> <label>``,
relative to the split folder, as mmpretrain's ImageNet layout).
"""
import gzip
import json
import os
import os.path as osp
import shutil
from typing import Dict, List, Optional, Tuple

import numpy as np
from PIL import Image

DEFAULT_ROOT = '/usr/share/datasets/fashion-mnist'
APT_HINT = ("install Debian's dataset-fashion-mnist package (as root: apt-get install dataset-fashion-mnist; "
            'tools/install_env.sh does) or pass the folder holding the four *-ubyte.gz files')
CLASSES = ('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot')
SPLIT_FILES: Dict[str, Tuple[str, str]] = {
    'train': ('train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz'),
    'test': ('t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'),
}
INFO_FILE = 'fashion_mnist.json'  # written into <out>/meta; marks a folder this tool owns


def class_dirs() -> List[str]:
    """Folder names ``0_t-shirt_top`` … ``9_ankle_boot``: sorting them keeps the original label order."""
    return [f'{i}_{c.lower().replace("/", "_").replace(" ", "_")}' for i, c in enumerate(CLASSES)]


def read_idx(path: str) -> np.ndarray:
    """Read a (gzipped) IDX file of unsigned bytes into an array of its declared shape."""
    opener = gzip.open if path.endswith('.gz') else open
    with opener(path, 'rb') as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f'{path} is not an unsigned-byte IDX file (magic {raw[:4].hex()})')
    ndim = raw[3]
    dims = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], 'big') for i in range(ndim))
    offset = 4 + 4 * ndim
    if len(raw) - offset != int(np.prod(dims)):
        raise ValueError(f'{path}: header says {dims} ({int(np.prod(dims))} bytes) but holds {len(raw) - offset}')
    return np.frombuffer(raw, np.uint8, offset=offset).reshape(dims)


def load_split(split: str, root: str = DEFAULT_ROOT) -> Tuple[np.ndarray, np.ndarray]:
    """Images (N, 28, 28) uint8 and labels (N,) of ``'train'`` (60k) or ``'test'`` (10k)."""
    if split not in SPLIT_FILES:
        raise KeyError(f'unknown Fashion-MNIST split {split!r}; choose from {sorted(SPLIT_FILES)}')
    paths = [osp.join(root, name) for name in SPLIT_FILES[split]]
    missing = [p for p in paths if not osp.isfile(p)]
    if missing:
        raise FileNotFoundError(f'Fashion-MNIST file(s) not found: {", ".join(missing)}; {APT_HINT}')
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f'{paths[0]} / {paths[1]}: shapes {images.shape} and {labels.shape} do not match')
    if labels.max() >= len(CLASSES):
        raise ValueError(f'{paths[1]}: label {labels.max()} outside 0..{len(CLASSES) - 1}')
    return images, labels


def balanced_subset(labels: np.ndarray, num: Optional[int], seed: int = 0) -> np.ndarray:
    """Sorted indices of ``num`` samples, as equal per class as possible (all when ``num`` is None)."""
    if num is None or num >= len(labels):
        return np.arange(len(labels))
    if num <= 0:
        raise ValueError(f'the number of images per split must be positive; got {num}')
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    per_class = [num // len(classes) + (1 if i < num % len(classes) else 0) for i in range(len(classes))]
    picks = []
    for c, n in zip(classes, per_class):
        idx = np.flatnonzero(labels == c)
        picks.append(rng.choice(idx, size=min(n, len(idx)), replace=False))
    return np.sort(np.concatenate(picks))


def to_rgb(images: np.ndarray, size: int) -> np.ndarray:
    """(N, h, w) grey uint8 → (N, size, size, 3) RGB uint8 (bicubic resize, channel replicated)."""
    if size <= 0:
        raise ValueError(f'size must be positive; got {size}')
    out = np.empty((len(images), size, size, 3), np.uint8)
    for i, im in enumerate(images):
        if im.shape != (size, size):
            im = np.asarray(Image.fromarray(im, 'L').resize((size, size), Image.BICUBIC))
        out[i] = im[..., None]
    return out


def prepare_fashion_mnist(out_dir: str,
                          size: int = 32,
                          num_train: Optional[int] = None,
                          num_test: Optional[int] = None,
                          seed: int = 0,
                          root: str = DEFAULT_ROOT) -> Dict[str, int]:
    """Write the ImageNet-style folder; returns the number of images per split.

    An existing ``<out>/{train,test,meta}`` written by an earlier call is
    replaced; any other existing content there makes this raise.
    """
    meta_dir = osp.join(out_dir, 'meta')
    owned = osp.isfile(osp.join(meta_dir, INFO_FILE))
    for sub in ('train', 'test', 'meta'):
        path = osp.join(out_dir, sub)
        if osp.exists(path) and os.listdir(path):
            if not owned:
                raise FileExistsError(f'{path} exists and was not written by prepare_fashion_mnist; '
                                      'choose an empty output folder')
            shutil.rmtree(path)
    # read everything first so that a missing file fails before anything is written
    splits = {}
    for split, num in (('train', num_train), ('test', num_test)):
        images, labels = load_split(split, root)
        idx = balanced_subset(labels, num, seed)
        splits[split] = (to_rgb(images[idx], size), labels[idx], idx)
    dirs = class_dirs()
    os.makedirs(meta_dir, exist_ok=True)
    counts = {}
    for split, (images, labels, idx) in splits.items():
        lines = []
        for d in dirs:
            os.makedirs(osp.join(out_dir, split, d), exist_ok=True)
        for im, label, src in zip(images, labels, idx):
            rel = f'{dirs[label]}/{split}_{src:05d}.png'
            Image.fromarray(im, 'RGB').save(osp.join(out_dir, split, rel))
            lines.append(f'{rel} {int(label)}')
        with open(osp.join(meta_dir, f'{split}.txt'), 'w') as f:
            f.write('\n'.join(lines) + '\n')
        counts[split] = len(lines)
    with open(osp.join(meta_dir, 'classes.txt'), 'w') as f:
        f.write('\n'.join(CLASSES) + '\n')
    with open(osp.join(meta_dir, INFO_FILE), 'w') as f:
        json.dump(dict(source=root, size=size, seed=seed, counts=counts, classes=list(CLASSES),
                       class_dirs=dirs), f, indent=1)
    return counts


def read_annotations(path: str) -> List[Tuple[str, int]]:
    """Lines ``<relative path> <label>`` of an annotation file."""
    out = []
    with open(path) as f:
        for line in f:
            if line.strip():
                rel, label = line.rsplit(maxsplit=1)
                out.append((rel, int(label)))
    return out


__all__ = ['CLASSES', 'DEFAULT_ROOT', 'class_dirs', 'read_idx', 'load_split', 'balanced_subset', 'to_rgb',
           'prepare_fashion_mnist', 'read_annotations']
