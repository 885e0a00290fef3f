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
"""
import argparse
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from mage_mm.datasets.fashion_mnist import DEFAULT_ROOT, prepare_fashion_mnist  # noqa: E402


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
