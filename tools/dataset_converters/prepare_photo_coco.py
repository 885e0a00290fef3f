"""Write a tiny COCO-format detection set of real-photo composites (the "photo-coco" data of the tiny configs).

    python tools/dataset_converters/prepare_photo_coco.py data/tiny_coco --num-train 4 --num-val 2

Each image is a crop of one of the photos shipped in installed packages (see prepare_photo_crops.py) with a
crop of the cat photo (class 'cat') pasted into its left half and a crop of the coffee photo (class 'cup')
into its right half, at random positions; boxes and polygon masks are exact. Layout:
``out_dir/images/{train,val}_NNN.png`` and ``out_dir/annotations/{train,val}.json`` (categories 1 'cat',
2 'cup'), as configs/detection/vitdet_mask-rcnn_mage-vit-tiny_1xb2-4iters_photo-coco-64px.py reads it.
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import Dict, List

import numpy as np
from PIL import Image

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from mage_mm.datasets.photos import packaged_photo_paths, random_crops  # noqa: E402

CATEGORIES = [dict(id=1, name='cat'), dict(id=2, name='cup')]


def make_photo_coco(out_dir: str, num_train: int = 4, num_val: int = 2, size: int = 96, obj: int = 32,
                    seed: int = 0) -> str:
    """Write the composites and their COCO annotations; return ``out_dir``.

    Args:
        out_dir (str): Output folder (created).
        num_train (int): Training images. Defaults to 4.
        num_val (int): Validation images. Defaults to 2.
        size (int): Image side in pixels. Defaults to 96.
        obj (int): Side of the pasted objects in pixels (at most ``size // 2``). Defaults to 32.
        seed (int): Seed of the crops and positions. Defaults to 0.
    """
    if min(num_train, num_val, size, obj) <= 0 or obj > size // 2:
        raise ValueError(f'need positive counts and sizes with obj <= size // 2, got num_train={num_train}, '
                         f'num_val={num_val}, size={size}, obj={obj}')
    paths = packaged_photo_paths()
    names = [osp.basename(p) for p in paths]
    cat, cup = paths[names.index('chelsea.png')], paths[names.index('coffee.png')]
    total = num_train + num_val
    backgrounds, _ = random_crops([p for p in paths if p not in (cat, cup)], total, size, seed=seed)
    objects = [random_crops([cat], total, obj, seed=seed + 1)[0], random_crops([cup], total, obj, seed=seed + 2)[0]]
    rng = np.random.default_rng(seed)
    os.makedirs(osp.join(out_dir, 'images'), exist_ok=True)
    os.makedirs(osp.join(out_dir, 'annotations'), exist_ok=True)
    ann_id = 1
    for split, ids in (('train', range(num_train)), ('val', range(num_train, total))):
        images: List[Dict] = []
        anns: List[Dict] = []
        for i in ids:
            img = backgrounds[i].copy()
            x0 = int(rng.integers(0, size // 2 - obj + 1))
            for label in (0, 1):  # one object per class, in the left and the right half
                x, y = x0 + label * size // 2, int(rng.integers(0, size - obj + 1))
                img[y:y + obj, x:x + obj] = objects[label][i]
                anns.append(dict(id=ann_id, image_id=i, category_id=label + 1, bbox=[x, y, obj, obj],
                                 area=obj * obj, iscrowd=0,
                                 segmentation=[[x, y, x + obj, y, x + obj, y + obj, x, y + obj]]))
                ann_id += 1
            name = f'{split}_{i:03d}.png'
            Image.fromarray(img).save(osp.join(out_dir, 'images', name))
            images.append(dict(id=i, file_name=name, width=size, height=size))
        with open(osp.join(out_dir, 'annotations', f'{split}.json'), 'w') as f:
            json.dump(dict(images=images, annotations=anns, categories=CATEGORIES), f)
    return out_dir


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out_dir', help='output folder (e.g. data/tiny_coco)')
    parser.add_argument('--num-train', type=int, default=4, help='training images (default 4)')
    parser.add_argument('--num-val', type=int, default=2, help='validation images (default 2)')
    parser.add_argument('--size', type=int, default=96, help='image side in pixels (default 96)')
    parser.add_argument('--obj', type=int, default=32, help='pasted object side in pixels (default 32)')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    try:
        make_photo_coco(args.out_dir, args.num_train, args.num_val, args.size, args.obj, args.seed)
    except ValueError as err:
        parser.error(str(err))
    print(f'wrote {args.num_train} + {args.num_val} composites of {args.size}x{args.size} to {args.out_dir}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
