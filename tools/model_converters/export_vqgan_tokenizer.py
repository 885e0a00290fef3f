"""Export the tokenizer trained by a VQGANTokenizerTrainer config as a plain MAGEVQGAN checkpoint.

    python tools/model_converters/export_vqgan_tokenizer.py work_dirs/vqgan_tiny_fm vqgan_tokenizer.pth
    python tools/model_converters/export_vqgan_tokenizer.py work_dirs/vqgan_tiny_fm/iter_300.pth out.pth

SRC is a Runner checkpoint (tokenizer under the ``tokenizer.`` prefix), a work dir (its
``last_checkpoint`` is used), a MAGE pretraining checkpoint (``target_generator.``) or a plain
tokenizer file. DST holds ``{'state_dict': <MAGEVQGAN keys, official names>, 'meta': {...}}``:
use it as ``MAGEVQGAN(init_cfg=dict(type='Pretrained', checkpoint=DST))`` in any MAGE config
(no prefix needed). Without exporting, the Runner checkpoint also works directly with
``init_cfg=dict(type='Pretrained', checkpoint=SRC, prefix='tokenizer.')``.
"""
import argparse
import os
import os.path as osp
import sys

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from mage_mm.apis import read_tokenizer  # noqa: E402
from mage_mm.models import MAGEVQGAN  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='Runner checkpoint, work dir, or MAGE / tokenizer checkpoint')
    parser.add_argument('dst', help='output .pth')
    args = parser.parse_args(argv)
    try:
        state_dict, arch, path = read_tokenizer(args.src)
        # strict load into the architecture: the file is usable as it is written
        MAGEVQGAN(arch=arch, frozen=True).load_state_dict(state_dict, strict=True)
    except (FileNotFoundError, KeyError, ValueError, RuntimeError) as err:
        print(f'error: {args.src}: {err}', file=sys.stderr)
        return 2
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    meta = dict(exported_from=osp.abspath(path), tokenizer_arch=arch, mage_mm_version=mage_mm.__version__)
    torch.save(dict(state_dict=state_dict, meta=meta), args.dst)
    codes, dim = state_dict['quantize.embedding.weight'].shape
    print(f'exported MAGEVQGAN (arch={arch!r}, {codes} codes x {dim}) from {path}: '
          f'{len(state_dict)} tensors -> {args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
