"""Write Fashion-MNIST (Debian's dataset-fashion-mnist) as an ImageNet-style RGB image folder.

    python tools/dataset_converters/prepare_fashion_mnist.py data/fashion_mnist \
        --size 32 --num-train 4000 --num-test 1000

Output (labels 0-9 in the original Fashion-MNIST order):

    data/fashion_mnist/train/0_t-shirt_top/train_00001.png ... 9_ankle_boot/...
    data/fashion_mnist/test/...                  (held out: the official 10k test set)
    data/fashion_mnist/meta/{train,test}.txt     ('<class dir>/<file> <label>', mmpretrain ann_file)
    data/fashion_mnist/meta/classes.txt, fashion_mnist.json

Grey images are resized (bicubic) and replicated to 3 channels. --num-* pick
class-balanced random subsets (seeded); leave them out for the full 60k / 10k.
No download: the source files come from `apt-get install dataset-fashion-mnist`.

The package (MIT licence, Zalando Research) installs the four original IDX
files under ``/usr/share/datasets/fashion-mnist``. We read them with numpy,
replicate the grey channel to RGB, resize to the demo size and write
``<out>/{train,test}/<label>_<class>/<split>_<index>.png`` plus mmpretrain
annotation files ``<out>/meta/{train,test}.txt`` (``<class dir>/<file> <label>``,
relative to the split folder, as mmpretrain's ImageNet layout).
"""
import argparse
import gzip
import json
import os
import os.path as osp
import shutil
import sys
import time
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out_dir', help='output folder (e.g. data/fashion_mnist)')
    parser.add_argument('--root', default=DEFAULT_ROOT,
                        help=f'folder with the *-ubyte.gz files (default {DEFAULT_ROOT})')
    parser.add_argument('--size', type=int, default=32, help='image side in pixels (default 32)')
    parser.add_argument('--num-train', type=int, default=None, help='training images (default: all 60000)')
    parser.add_argument('--num-test', type=int, default=None, help='held-out test images (default: all 10000)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the balanced subsets')
    args = parser.parse_args(argv)
    for name in ('size', 'num_train', 'num_test'):
        value = getattr(args, name)
        if value is not None and value <= 0:
            parser.error(f'--{name.replace("_", "-")} must be positive; got {value}')
    start = time.time()
    try:
        counts = prepare_fashion_mnist(args.out_dir, size=args.size, num_train=args.num_train,
                                       num_test=args.num_test, seed=args.seed, root=args.root)
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    print(f'wrote Fashion-MNIST {args.size}x{args.size} RGB to {args.out_dir}: {counts["train"]} train / '
          f'{counts["test"]} test images, 10 classes ({time.time() - start:.1f} s)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
