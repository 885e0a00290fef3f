"""Convert official MAGE checkpoints (LTH14/mage) to mage_mm / mmpretrain layouts.

Examples:
    # pre-trained MAGE ViT-B/L or MAGE-C (tokenizer included under backbone.tokenizer.)
    python tools/model_converters/mage_to_mmpretrain.py mage-vitb-1600.pth mage_vit-base_converted.pth
    # the tokenizer alone (use it as MAGEVQGAN init_cfg Pretrained checkpoint)
    python tools/model_converters/mage_to_mmpretrain.py vqgan_jax_strongaug.ckpt vqgan_converted.pth
    # fine-tuned / linear-probe classifiers (ImageClassifier with a MAGEViT backbone)
    python tools/model_converters/mage_to_mmpretrain.py mage-vitb-ft.pth mage_vit-base_ft_converted.pth

The source is read with ``torch.load(weights_only=True)`` (plus
``argparse.Namespace``, which the official training scripts store), so a
checkpoint from elsewhere cannot run code while being converted.
"""
import argparse
import os
import os.path as osp
import pickle
import sys

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
import mage_mm  # noqa: E402  (its version goes into the meta)
from mage_mm.converters import CheckpointLayoutError, convert_official, load_official  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Convert an official MAGE checkpoint to the mage_mm layout')
    parser.add_argument('src', help='official checkpoint (.pth / .ckpt)')
    parser.add_argument('dst', help='output file (mmengine checkpoint with a "state_dict" entry)')
    parser.add_argument('--layout', default='auto', choices=['auto', 'pretrain', 'vqgan', 'classifier'],
                        help='source layout; auto-detected from the keys by default')
    parser.add_argument('--no-tokenizer', action='store_true',
                        help='leave the vqgan.* tensors out (they are then loaded from a separate file)')
    parser.add_argument('--ignore-keys', default=None, metavar='REGEX',
                        help='drop source keys matching REGEX instead of failing on them')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        checkpoint = load_official(args.src)
        state_dict, layout = convert_official(checkpoint, layout=args.layout, with_tokenizer=not args.no_tokenizer,
                                              ignore_keys=args.ignore_keys)
    except (FileNotFoundError, CheckpointLayoutError, pickle.UnpicklingError) as err:
        print(f'error: {args.src}: {err}', file=sys.stderr)
        return 2
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    meta = dict(converted_from=osp.basename(args.src), layout=layout, mage_mm_version=mage_mm.__version__)
    torch.save(dict(state_dict=state_dict, meta=meta), args.dst)
    n = sum(v.numel() for v in state_dict.values())
    print(f'{layout}: wrote {len(state_dict)} tensors ({n / 1e6:.2f} M elements) to {args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
