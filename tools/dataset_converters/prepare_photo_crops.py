"""Write a folder of real photo crops taken from photos shipped in installed packages.

    python tools/dataset_converters/prepare_photo_crops.py data/tiny_images --num 64 --size 32

No download: the photos come from scikit-image, foolbox (20 ImageNet val
images), scikit-learn and matplotlib, all installed by tools/install_env.sh.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from mage_mm.datasets.photos import packaged_photo_paths, random_crops, write_image_folder  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out_dir')
    parser.add_argument('--num', type=int, default=64, help='number of crops')
    parser.add_argument('--size', type=int, default=32, help='crop side in pixels')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    if args.num <= 0 or args.size <= 0:
        parser.error('--num and --size must be positive')
    paths = packaged_photo_paths()
    images, _ = random_crops(paths, args.num, args.size, seed=args.seed)
    write_image_folder(images, args.out_dir)
    print(f'wrote {len(images)} crops of {args.size}x{args.size} from {len(paths)} photos to {args.out_dir}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
