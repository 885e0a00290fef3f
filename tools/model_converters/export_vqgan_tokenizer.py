"""Export the tokenizer trained by a VQGANTokenizerTrainer config as a plain MAGEVQGAN checkpoint.

    python tools/model_converters/export_vqgan_tokenizer.py work_dirs/vqgan_tiny_fm vqgan_tokenizer.pth
    python tools/model_converters/export_vqgan_tokenizer.py work_dirs/vqgan_tiny_fm/iter_300.pth out.pth

SRC is a Runner checkpoint (tokenizer under the ``tokenizer.`` prefix), a work dir (its
``last_checkpoint`` is used), any checkpoint of a model that contains the tokenizer (``backbone.tokenizer.``) or a plain
tokenizer file. DST holds ``{'state_dict': <MAGEVQGAN keys, official names>, 'meta': {...}}``:
use it as ``MAGEVQGAN(init_cfg=dict(type='Pretrained', checkpoint=DST))`` in any MAGE config
(no prefix needed). Without exporting, the Runner checkpoint also works directly with
``init_cfg=dict(type='Pretrained', checkpoint=SRC, prefix='tokenizer.')``.
"""
import argparse
import ast
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
import mage_mm  # noqa: E402
from mage_mm.apis import read_tokenizer  # noqa: E402
from mage_mm.models.tokenizers import MAGEVQGAN  # noqa: E402
from mage_mm.utils.atomic import atomic_torch_save  # noqa: E402


def _arch(text: str):
    """``--arch``: a built-in name, or a dict literal (parsed as a literal, never evaluated)."""
    return ast.literal_eval(text) if text.lstrip().startswith('{') else text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='Runner checkpoint, work dir, or MAGE / tokenizer checkpoint')
    parser.add_argument('dst', help='output .pth')
    parser.add_argument('--arch', type=_arch, default=None,
                        help="tokenizer arch for files that store none: a name (tiny, parity-tiny, official) or a "
                        "dict literal \"{'ch': 32, 'ch_mult': [1, 2, 2], 'num_res_blocks': 1, 'z_channels': 64, "
                        "'num_codes': 256}\"")
    args = parser.parse_args(argv)
    try:
        state_dict, arch, path = read_tokenizer(args.src, args.arch)
        # strict load into the architecture: the file is usable as it is written
        MAGEVQGAN(arch=arch, frozen=True).load_state_dict(state_dict, strict=True)
    except (FileNotFoundError, KeyError, ValueError, RuntimeError) as err:
        print(f'error: {args.src}: {err}', file=sys.stderr)
        return 2
    # the arch as plain data (read back by load_tokenizer without evaluating any config text)
    meta = dict(exported_from=osp.abspath(path), mage_mm=dict(tokenizer_arch=arch, version=mage_mm.__version__))
    atomic_torch_save(dict(state_dict=state_dict, meta=meta), args.dst)
    codes, dim = state_dict['quantize.embedding.weight'].shape
    print(f'exported MAGEVQGAN (arch={arch!r}, {codes} codes x {dim}) from {path}: '
          f'{len(state_dict)} tensors -> {args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
