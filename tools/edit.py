"""Edit an image with MAGE: inpaint, outpaint or uncrop a masked region by iterative decoding.

    python tools/edit.py CONFIG CHECKPOINT --image IMG --out OUT.png
        (--mask MASK.png | --task inpaint|outpaint|uncrop [--box X0 Y0 X1 Y1] [--side right] [--fraction 0.5])
        [--seed 0] [--num-samples 1] [--dilation 0] [--no-paste-back] [--panel PANEL.png] [--scale 1]
        [--num-iter T] [--choice-temperature 6.0] [--device cpu|cuda] [--cfg-options k=v ...]

The mask is white (nonzero) where the image is regenerated (mmagic's convention).
Every token cell the mask touches is regenerated, the other tokens are kept
exactly and the rest is decoded with the generation loop; the known pixels are
pasted back unless ``--no-paste-back``. An image whose size differs from the
model's is resized for the model and the result resized back. ``--panel``
writes input | masked input | regenerated token cells | result(s) side by side.
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import mage_mm.compat  # noqa: E402,F401  the version-gated shims of mage_mm/compat.py (as configs do)
from mage_mm.models.generators.decoding import DecodingOptions  # noqa: E402
from mage_mm.utils.cfg_options import SafeDictAction  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Inpaint / outpaint / uncrop an image with MAGE')
    parser.add_argument('config', help='generation config (configs/generation/)')
    parser.add_argument('checkpoint', help='MAGE checkpoint')
    parser.add_argument('--image', required=True)
    parser.add_argument('--out', required=True, help='result PNG (with --num-samples k: OUT_0.png ...)')
    parser.add_argument('--mask', help='mask image, nonzero = regenerate')
    parser.add_argument('--task', choices=['inpaint', 'outpaint', 'uncrop'], help='make the mask instead')
    parser.add_argument('--box', type=int, nargs=4, metavar=('X0', 'Y0', 'X1', 'Y1'),
                        help='inpaint/outpaint box in pixels (default: the central half)')
    parser.add_argument('--side', default='right', choices=['left', 'right', 'top', 'bottom'])
    parser.add_argument('--fraction', type=float, default=0.5, help='uncropped fraction')
    parser.add_argument('--seed', type=int, default=0, help='sample j uses seed + j')
    parser.add_argument('--num-samples', type=int, default=1)
    parser.add_argument('--dilation', type=int, default=0, help='grow the regenerated token region (cells)')
    parser.add_argument('--no-paste-back', action='store_true', help='keep the decoded known region')
    parser.add_argument('--panel', help='also write an overview panel here')
    parser.add_argument('--scale', type=int, default=1, help='nearest-neighbour upscaling of the panel')
    parser.add_argument('--num-iter', type=int)
    parser.add_argument('--choice-temperature', type=float)
    parser.add_argument('--device', default=None)
    from mage_mm.engine.precision import add_precision_args  # one switch for every tool
    add_precision_args(parser, compile_flag=True)
    parser.add_argument('--cfg-options', nargs='+', action=SafeDictAction)
    args = parser.parse_args(argv)
    if (args.mask is None) == (args.task is None):
        parser.error('give exactly one of --mask and --task')
    if args.num_samples < 1:
        parser.error('--num-samples must be >= 1')
    try:  # the checks (and messages) of iterative_decode and MAGEGenerator: one DecodingOptions
        DecodingOptions.from_dict(decode_options(args))
    except ValueError as err:
        parser.error(str(err))
    if args.scale < 1:
        parser.error('--scale must be >= 1')
    return args


def decode_options(args) -> dict:
    """The decoding options given on the command line (the config's apply to the others)."""
    opts = dict(num_iter=args.num_iter, choice_temperature=args.choice_temperature)
    return {k: v for k, v in opts.items() if v is not None}


def _uint8(images01: torch.Tensor) -> np.ndarray:
    return (images01.clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy() * 255).round().astype(np.uint8)


def main(argv=None) -> int:
    args = parse_args(argv)
    from mage_mm.utils.allocator import tune_malloc_for_tools
    tune_malloc_for_tools()  # glibc malloc tunables (README "Performance"); MAGE_MM_MALLOC=0/1 overrides the default
    from mage_mm.apis import image_grid, init_generator, load_mask, load_rgb01, save_png
    from mage_mm.models.generators import edit_mask

    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    model = init_generator(args.config, args.checkpoint, device=device, cfg_options=args.cfg_options,
                           precision=args.precision, tokenizer_precision=args.tokenizer_precision,
                           compile=args.compile, attention_precision=args.attention_precision)
    image = load_rgb01(args.image)
    H, W = image.shape[-2:]
    if args.mask:
        mask = load_mask(args.mask)
        if mask.shape[-2:] != (H, W):
            raise ValueError(f'mask {args.mask} is {mask.shape[-1]}x{mask.shape[-2]} but the image is {W}x{H}')
    else:
        mask = edit_mask(args.task, H, W, box=args.box, side=args.side, fraction=args.fraction)[None]
    if not mask.any():
        raise ValueError('the mask is empty: nothing to regenerate')
    options = decode_options(args)
    n = args.num_samples
    result = model.edit(image.repeat(n, 1, 1, 1), mask.repeat(n, 1, 1, 1), seeds=[args.seed + j for j in range(n)],
                        dilation=args.dilation, paste_back=not args.no_paste_back, **options)
    outputs = _uint8(result.images)
    stem, ext = osp.splitext(args.out)
    paths = [args.out] if n == 1 else [f'{stem}_{j}{ext or ".png"}' for j in range(n)]
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    for img, path in zip(outputs, paths):
        save_png(img, path)  # atomic; refuses a symbolic link at the output path
    known = int((~result.token_mask[0]).sum())
    print(f'[edit] regenerated {int(result.token_mask[0].sum())} of {result.token_mask.shape[1]} tokens, '
          f'kept {known}; wrote {", ".join(paths)}')

    if args.panel:
        gh, gw = model.token_grid
        cells = result.token_mask[:1].float().reshape(1, 1, gh, gw)
        cells = F.interpolate(cells, size=(H, W), mode='nearest').cpu()
        masked = image * (1 - mask.float()) + 0.5 * mask.float()
        shaded = image * (1 - 0.6 * cells) + torch.tensor([1.0, 0.2, 0.2]).view(1, 3, 1, 1) * 0.6 * cells
        tiles = [_uint8(image)[0], _uint8(masked)[0], _uint8(shaded)[0], *outputs]
        panel = image_grid(tiles, ncols=len(tiles))
        if args.scale > 1:
            panel = np.kron(panel, np.ones((args.scale, args.scale, 1), np.uint8))
        save_png(panel, args.panel)
        print(f'[edit] panel (input | masked | regenerated token cells | result) in {args.panel}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
