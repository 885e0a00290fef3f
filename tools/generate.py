"""Generate images with a MAGE generation config and checkpoint, sharded over processes, resumable.

    python tools/generate.py CONFIG CHECKPOINT --num-images N --out-dir DIR [--batch-size 32] [--seed 0]
        [--num-iter 20] [--choice-temperature 6.0] [--schedule cosine|linear|arccos]
        [--sampling-temperature 1.0] [--top-k K] [--per-sample-mask-len] [--seed-mode per_image|batch]
        [--npz] [--grid 64] [--overwrite] [--device cpu|cuda] [--cfg-options k=v ...]
    torchrun --nproc_per_node 8 tools/generate.py CONFIG CHECKPOINT --num-images 50000 --out-dir DIR

Image ``i`` is written to ``DIR/{i:06d}.png``. With ``--seed-mode per_image``
(default) it is decoded from seed ``seed + i`` alone, so it is the same
whatever the batch size or the number of processes; ``--seed-mode batch``
reproduces the official script's RNG order (batch ``b`` of ``--batch-size``
images seeded with ``seed + b``). A rerun skips the images already written
(``--overwrite`` regenerates them); ``DIR/generation.json`` records the
settings and a rerun with other settings is refused. Images go to disk as they
are made; ``--npz`` then streams them into ``DIR/samples.npz`` (``arr_0``,
uint8 N×H×W×3, the ADM/guided-diffusion evaluation layout) and ``DIR/grid.png``
shows the first ``--grid`` images.
"""
import argparse
import json
import os
import os.path as osp
import sys
import zipfile
from typing import Dict, List

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import mage_mm  # noqa: E402,F401  runtime shims before any OpenMMLab import

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
from mmengine.config import DictAction  # noqa: E402
from PIL import Image  # noqa: E402

SETTINGS_FILE = 'generation.json'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Generate images with a MAGE generator')
    parser.add_argument('config', help='generation config (configs/generation/)')
    parser.add_argument('checkpoint', help='MAGE checkpoint (mage_mm or converted official)')
    parser.add_argument('--num-images', type=int, required=True, help='number of images (indices 0..N-1)')
    parser.add_argument('--out-dir', required=True, help='output folder')
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--seed', type=int, default=0, help='image i uses seed + i (per_image mode)')
    parser.add_argument('--seed-mode', choices=['per_image', 'batch'], default='per_image')
    parser.add_argument('--num-iter', type=int, help='decoding steps (config default: 20)')
    parser.add_argument('--choice-temperature', type=float)
    parser.add_argument('--schedule', choices=['cosine', 'linear', 'arccos'])
    parser.add_argument('--sampling-temperature', type=float)
    parser.add_argument('--top-k', type=int)
    parser.add_argument('--per-sample-mask-len', action='store_true', default=None)
    parser.add_argument('--npz', action='store_true', help='also write DIR/samples.npz')
    parser.add_argument('--grid', type=int, default=64, help='images in DIR/grid.png (0: none)')
    parser.add_argument('--overwrite', action='store_true', help='regenerate images already written')
    parser.add_argument('--device', default=None, help='cpu or cuda (default: cuda when available)')
    parser.add_argument('--no-progress', action='store_true')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config settings')
    args = parser.parse_args(argv)
    if args.num_images <= 0:
        parser.error(f'--num-images must be > 0; got {args.num_images}')
    if args.batch_size <= 0:
        parser.error(f'--batch-size must be > 0; got {args.batch_size}')
    if args.num_iter is not None and args.num_iter < 1:
        parser.error(f'--num-iter (decoding steps) must be >= 1; got {args.num_iter}')
    if args.top_k is not None and args.top_k < 1:
        parser.error(f'--top-k must be >= 1; got {args.top_k}')
    if args.grid < 0:
        parser.error('--grid must be >= 0')
    return args


def image_path(out_dir: str, index: int) -> str:
    return osp.join(out_dir, f'{index:06d}.png')


def is_done(out_dir: str, index: int) -> bool:
    p = image_path(out_dir, index)
    return osp.isfile(p) and osp.getsize(p) > 0


def plan_work(args, rank: int, world: int) -> List[List[int]]:
    """Batches of image indices this process must (still) generate."""
    n, bs = args.num_images, args.batch_size
    todo = lambda i: args.overwrite or not is_done(args.out_dir, i)  # noqa: E731
    if args.seed_mode == 'batch':
        # whole official batches per process: batch b holds images [b*bs, (b+1)*bs)
        batches = [list(range(b * bs, min(n, (b + 1) * bs))) for b in range(rank, -(-n // bs), world)]
        return [b for b in batches if any(todo(i) for i in b)]
    mine = [i for i in range(rank, n, world) if todo(i)]
    return [mine[k:k + bs] for k in range(0, len(mine), bs)]


def decode_options(args) -> Dict[str, object]:
    opts = dict(num_iter=args.num_iter, choice_temperature=args.choice_temperature, schedule=args.schedule,
                sampling_temperature=args.sampling_temperature, top_k=args.top_k,
                per_sample_mask_len=args.per_sample_mask_len, seed_mode=args.seed_mode)
    return {k: v for k, v in opts.items() if v is not None}


def settings_of(args, model, options) -> Dict[str, object]:
    """What determines the images of a folder (compared when resuming)."""
    cfg = dict(model.decode_cfg)
    cfg.update(options)
    settings = dict(checkpoint=osp.abspath(args.checkpoint), seed=args.seed, image_size=list(model.image_size),
                    decoding={k: cfg[k] for k in sorted(cfg)})
    if args.seed_mode == 'batch':
        settings['batch_size'] = args.batch_size
    return settings


def check_settings(args, settings) -> bool:
    """Refuse to resume into a folder made with other settings; True when the file must be written."""
    path = osp.join(args.out_dir, SETTINGS_FILE)
    if not osp.isfile(path) or args.overwrite:
        return True
    with open(path) as f:
        old = json.load(f)
    if old != settings:
        diff = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
        raise SystemExit(f'{args.out_dir} holds images generated with other settings ({", ".join(diff)} '
                         f'differ, see {path}); use a new --out-dir or --overwrite')
    return False


def write_npz(out_dir: str, num_images: int, path: str) -> None:
    """Stream the PNGs into an .npz (``arr_0``) without holding them all in memory."""
    first = np.asarray(Image.open(image_path(out_dir, 0)).convert('RGB'))
    header = dict(descr=np.lib.format.dtype_to_descr(np.dtype(np.uint8)), fortran_order=False,
                  shape=(num_images, *first.shape))
    tmp = f'{path}.tmp{os.getpid()}'
    with zipfile.ZipFile(tmp, 'w', compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        with zf.open('arr_0.npy', 'w', force_zip64=True) as f:
            np.lib.format.write_array_header_2_0(f, header)
            for i in range(num_images):
                img = np.asarray(Image.open(image_path(out_dir, i)).convert('RGB'), dtype=np.uint8)
                if img.shape != first.shape:
                    raise ValueError(f'{image_path(out_dir, i)} is {img.shape}, expected {first.shape}')
                f.write(np.ascontiguousarray(img).tobytes())
    os.replace(tmp, path)


def setup_distributed():
    world = int(os.environ.get('WORLD_SIZE', '1'))
    rank = int(os.environ.get('RANK', '0'))
    local_rank = int(os.environ.get('LOCAL_RANK', '0'))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend='nccl' if torch.cuda.is_available() else 'gloo')
    return rank, world, local_rank


def main(argv=None) -> int:
    args = parse_args(argv)
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {args.checkpoint}')
    from mage_mm.apis import image_grid, init_generator, save_png, to_uint8

    rank, world, local_rank = setup_distributed()
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    if device == 'cuda':
        device = f'cuda:{local_rank}'
    model = init_generator(args.config, args.checkpoint, device=device, cfg_options=args.cfg_options)
    options = decode_options(args)
    model._decode_options(options)  # validate before any work
    os.makedirs(args.out_dir, exist_ok=True)
    settings = settings_of(args, model, options)
    write_settings = check_settings(args, settings)  # every rank reads before anyone writes
    if world > 1:
        dist.barrier()
    if rank == 0 and write_settings:
        with open(osp.join(args.out_dir, SETTINGS_FILE), 'w') as f:
            json.dump(settings, f, indent=2, sort_keys=True)

    work = plan_work(args, rank, world)
    total = sum(len(b) for b in work)
    mine = len(range(rank, args.num_images, world)) if args.seed_mode == 'per_image' else None
    if rank == 0:
        skipped = (mine - total) if mine is not None else None
        print(f'[generate] {args.num_images} images, {world} process(es); rank 0 generates {total}'
              + (f', skips {skipped} already written' if skipped else ''), flush=True)
    progress = None
    if rank == 0 and not args.no_progress:
        from tqdm import tqdm
        progress = tqdm(total=total, desc=f'generate (rank 0/{world})', unit='img')
    for batch in work:
        if args.seed_mode == 'batch':
            b = batch[0] // args.batch_size
            seeds = [args.seed + b] * args.batch_size  # BatchSampler uses the first; the batch stays whole
            indices = list(range(b * args.batch_size, (b + 1) * args.batch_size))
        else:
            seeds, indices = [args.seed + i for i in batch], batch
        images = to_uint8(model.generate(seeds, **options))
        for idx, img in zip(indices, images):
            if idx < args.num_images and (args.overwrite or not is_done(args.out_dir, idx)):
                save_png(img, image_path(args.out_dir, idx))
        if progress is not None:
            progress.update(len(batch))
    if progress is not None:
        progress.close()
    if world > 1:
        dist.barrier()
    if rank == 0:
        if args.grid:
            n = min(args.grid, args.num_images)
            grid = image_grid([np.asarray(Image.open(image_path(args.out_dir, i)).convert('RGB')) for i in range(n)])
            Image.fromarray(grid).save(osp.join(args.out_dir, 'grid.png'))
        if args.npz:
            write_npz(args.out_dir, args.num_images, osp.join(args.out_dir, 'samples.npz'))
        print(f'[generate] done: {args.num_images} images in {args.out_dir}', flush=True)
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return 0


if __name__ == '__main__':
    sys.exit(main())
