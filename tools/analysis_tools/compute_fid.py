"""FID between a folder of generated images and reference statistics (or a second folder).

    python tools/analysis_tools/compute_fid.py GEN_FOLDER REF [--inception PATH] [--batch-size 50]

REF is an .npz from tools/analysis_tools/fid_reference_stats.py or a folder of images (used as
stored). With the 50k PNGs of tools/generate.py and the ImageNet-val 256 statistics this is the
official MAGE protocol (torch-fidelity's FID: TF Inception 2015-12-05, TF1 bilinear resize to 299).
"""
import argparse
import json
import os.path as osp
import sys

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description='FID of a folder of generated images')
    parser.add_argument('generated', help='folder of generated images')
    parser.add_argument('reference', help='.npz statistics or a folder of real images')
    parser.add_argument('--inception', default=None)
    parser.add_argument('--batch-size', type=int, default=50)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--out', default=None, help='also write the result to this JSON file')
    from mage_mm.engine.precision import add_precision_args, autocast_callable  # one switch for every tool
    add_precision_args(parser, attention_flag=False)
    args = parser.parse_args(argv)
    from tqdm import tqdm

    from mage_mm.evaluation.fid import (
        compute_folder_features,
        feature_statistics,
        fid_from_features,
        list_images,
        load_stats,
    )
    from mage_mm.evaluation.inception import TFInceptionFeatures

    net = TFInceptionFeatures(args.inception).to(args.device)
    # Inception in --precision (default fp32, the official protocol); features come back fp32
    net.forward = autocast_callable(net.forward, args.precision or 'fp32', torch.device(args.device).type)

    def features(folder):
        bar = tqdm(total=len(list_images(folder)), desc=f'features {osp.basename(osp.normpath(folder))}',
                   unit='img')
        feats = compute_folder_features(folder, net, batch_size=args.batch_size, device=args.device,
                                        progress=bar.update)
        bar.close()
        return feats

    generated = features(args.generated)
    if osp.isdir(args.reference):
        real = features(args.reference)
        (mu_r, sigma_r), n_r = feature_statistics(real), len(real)
    else:
        mu_r, sigma_r, meta = load_stats(args.reference)
        n_r = meta.get('num_images')
    result = fid_from_features(generated, mu_r, sigma_r)
    result.update(num_generated=len(generated), num_reference=n_r)
    print(json.dumps(result, indent=2))
    if args.out:
        from mage_mm.utils.atomic import atomic_write
        with atomic_write(args.out, 'w') as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == '__main__':
    main()
