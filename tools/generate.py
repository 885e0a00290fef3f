"""Generate images with a MAGE generation config and checkpoint, sharded over processes, resumable.

    python tools/generate.py CONFIG CHECKPOINT --num-images N --out-dir DIR [--batch-size 32] [--seed 0]
        [--num-iter 20] [--choice-temperature 6.0] [--schedule cosine|linear|arccos]
        [--sampling-temperature 1.0] [--top-k K] [--per-sample-mask-len] [--seed-mode per_image|batch]
        [--npz] [--grid 64] [--overwrite] [--device cpu|cuda] [--cfg-options k=v ...]
    torchrun --nproc_per_node 8 tools/generate.py CONFIG CHECKPOINT --num-images 50000 --out-dir DIR
    python tools/generate.py COND_CONFIG COND_CHECKPOINT --classes all --num-per-class 50 --guidance 2.0 \
        [--guidance-schedule constant|linear] --out-dir DIR      # class-conditional (MAGECondGenerator)

Class-conditional configs (``MAGECondGenerator``): ``--classes`` takes ``all``,
ids ``0,3,7``, ranges ``0-9`` or a mix, and ``--num-per-class N`` images of
each (class-major: image ``i`` has class ``classes[i // N]`` and seed
``seed + i``, so it depends only on its seed and class); ``DIR/labels.txt``
lists ``<file> <class id>`` (a labelled mmpretrain ``CustomDataset``), the
grid has one row per class, and the classes and guidance are part of the
settings a resume must match. ``--guidance S``: classifier-free guidance scale
(1 = none, the config's default unless given).

Image ``i`` is written to ``DIR/{i:06d}.png``. With ``--seed-mode per_image``
(default) it is decoded from seed ``seed + i`` alone, so it is the same
whatever the batch size or the number of processes; ``--seed-mode batch``
reproduces the official script's RNG order (batch ``b`` of ``--batch-size``
images seeded with ``seed + b``). Images go to disk as they are made; ``--npz``
then streams them into ``DIR/samples.npz`` (``arr_0``, uint8 N×H×W×3, the
ADM/guided-diffusion evaluation layout) and ``DIR/grid.png`` shows the first
``--grid`` images.

The folder is safe to resume and to share:

* every file (PNGs, ``samples.npz``, ``grid.png``, ``generation.json``) is
  written atomically (temporary file in the folder, then a rename), never
  through a symbolic link, and never outside ``DIR``; temporary files left by a
  killed run are removed by the next one;
* a rerun skips only images that decode completely at the model's size (a
  truncated or foreign file is regenerated); ``--overwrite`` regenerates all;
* ``DIR/generation.json`` records what made the images (seed, decoding
  settings, image size, the sha256 of the checkpoint's *content* and of the
  model config): a rerun with anything else is refused (``--overwrite`` then
  clears the folder's images first, so images of two runs never mix);
* ``DIR/.generate.lock`` (an OS file lock, released even by ``kill -9``)
  refuses a second run into the same folder while one is writing.
"""
import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import os.path as osp
import re
import socket
import sys
import zipfile
from typing import Dict, List, Optional, Tuple

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
from PIL import Image  # noqa: E402

import mage_mm.compat  # noqa: E402,F401  the version-gated shims of mage_mm/compat.py (as configs do)
from mage_mm.models.generators.decoding import DecodingOptions  # noqa: E402
from mage_mm.utils.atomic import atomic_path, atomic_write, is_temp_name  # noqa: E402
from mage_mm.utils.cfg_options import SafeDictAction  # noqa: E402

SETTINGS_FILE = 'generation.json'
LOCK_FILE = '.generate.lock'
GRID_FILE = 'grid.png'
NPZ_FILE = 'samples.npz'
LABELS_FILE = 'labels.txt'  # class-conditional runs: "<file> <class id>" per image
_IMAGE_RE = re.compile(r'^\d{6}\.png$')
# temporary files of earlier versions of this tool ("000003.png.tmp123.png", "samples.npz.tmp123")
_OLD_TEMP_RE = re.compile(r'^(\d{6}\.png\.tmp\d+\.png|samples\.npz\.tmp\d+)$')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Generate images with a MAGE generator')
    parser.add_argument('config', help='generation config (configs/generation/)')
    parser.add_argument('checkpoint', help='MAGE checkpoint (mage_mm or converted official)')
    parser.add_argument('--num-images', type=int, help='number of images (indices 0..N-1); with --classes: '
                        'len(classes) * --num-per-class')
    parser.add_argument('--classes', default=None, help="class-conditional: 'all', '0,3,7', '0-9' or a mix")
    parser.add_argument('--num-per-class', type=int, default=None, help='images per class (with --classes)')
    parser.add_argument('--guidance', type=float, default=None, help='classifier-free guidance scale (1: none)')
    parser.add_argument('--guidance-schedule', choices=['constant', 'linear'], default=None)
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
    from mage_mm.engine.precision import add_precision_args  # one switch for every tool
    add_precision_args(parser, compile_flag=True)
    parser.add_argument('--no-progress', action='store_true')
    parser.add_argument('--cfg-options', nargs='+', action=SafeDictAction,
                        help='override config settings')
    args = parser.parse_args(argv)
    if args.classes is None and (args.num_per_class is not None or args.guidance is not None
                                 or args.guidance_schedule is not None):
        parser.error('--num-per-class, --guidance and --guidance-schedule need --classes (class-conditional)')
    if args.classes is not None:
        if args.seed_mode == 'batch':
            parser.error('--seed-mode batch (the official unconditional RNG order) does not apply to --classes')
        if args.num_per_class is None or args.num_per_class < 1:
            parser.error('--classes needs --num-per-class N >= 1 (images of each class)')
        if args.num_images is not None:
            parser.error('with --classes the number of images is len(classes) * --num-per-class; '
                         'drop --num-images')
        args.num_images = 1  # set from the model's class count in main()
    elif args.num_images is None:
        parser.error('--num-images is required (or --classes with --num-per-class)')
    if args.num_images <= 0:
        parser.error(f'--num-images must be > 0; got {args.num_images}')
    if args.batch_size <= 0:
        parser.error(f'--batch-size must be > 0; got {args.batch_size}')
    try:  # the checks (and messages) of iterative_decode and MAGEGenerator: one DecodingOptions
        DecodingOptions.from_dict(decode_options(args))
    except ValueError as err:
        parser.error(str(err))
    if args.grid < 0:
        parser.error('--grid must be >= 0')
    return args


def image_path(out_dir: str, index: int) -> str:
    return osp.join(out_dir, f'{index:06d}.png')


def read_rgb(path: str) -> np.ndarray:
    """A PNG of the folder as (H, W, 3) uint8, fully decoded; an error names the file."""
    try:
        with Image.open(path) as img:
            return np.asarray(img.convert('RGB'))
    except (OSError, SyntaxError, ValueError) as err:
        raise ValueError(f'cannot read {path}: {err}. Delete it and rerun tools/generate.py with the same '
                         'arguments to regenerate it') from None


def is_done(out_dir: str, index: int, size: Optional[Tuple[int, int]] = None) -> bool:
    """Whether image ``index`` is a regular file that decodes completely (at ``size`` = (H, W) if given).

    A non-empty file is not enough: a truncated PNG (a copy cut short, a full
    disk) or a file someone put there is regenerated.
    """
    p = image_path(out_dir, index)
    if osp.islink(p) or not osp.isfile(p):
        return False
    try:
        with Image.open(p) as img:
            img.load()  # decodes every row: a truncated file raises here
            return img.format == 'PNG' and img.mode == 'RGB' and (size is None or img.size == (size[1], size[0]))
    except (OSError, SyntaxError, ValueError):
        return False


def plan_work(args, rank: int, world: int, size: Optional[Tuple[int, int]] = None) -> List[List[int]]:
    """Batches of image indices this process must (still) generate."""
    n, bs = args.num_images, args.batch_size
    done = None if args.overwrite else {}

    def todo(i):
        if done is None:
            return True
        if i not in done:
            done[i] = is_done(args.out_dir, i, size)
        return not done[i]

    if args.seed_mode == 'batch':
        # whole official batches per process: batch b holds images [b*bs, (b+1)*bs)
        # (only the missing ones are listed: the caller decodes the whole batch of batch[0] and writes these)
        batches = [[i for i in range(b * bs, min(n, (b + 1) * bs)) if todo(i)] for b in range(rank, -(-n // bs), world)]
        return [b for b in batches if b]
    mine = [i for i in range(rank, n, world) if todo(i)]
    return [mine[k:k + bs] for k in range(0, len(mine), bs)]


def decode_options(args) -> Dict[str, object]:
    opts = dict(num_iter=args.num_iter, choice_temperature=args.choice_temperature, schedule=args.schedule,
                sampling_temperature=args.sampling_temperature, top_k=args.top_k,
                per_sample_mask_len=args.per_sample_mask_len, seed_mode=args.seed_mode)
    return {k: v for k, v in opts.items() if v is not None}


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def _without_init_cfg(obj):
    # init_cfg names files to initialise from; the checkpoint overrides every weight, so they do not
    # change the images (and a moved tokenizer file must not make a folder unresumable)
    if isinstance(obj, dict):
        return {k: _without_init_cfg(v) for k, v in obj.items() if k != 'init_cfg'}
    if isinstance(obj, (list, tuple)):
        return [_without_init_cfg(v) for v in obj]
    return obj


def settings_of(args, model, options, checkpoint_sha256: str) -> Dict[str, object]:
    """What determines the images of a folder (compared when resuming): content, not paths."""
    cfg = model.decoding_options(options).to_dict()
    cfg = {k: (repr(v) if callable(v) else v) for k, v in cfg.items()}
    model_cfg = json.dumps(_without_init_cfg(model.cfg.model.to_dict()), sort_keys=True, default=repr)
    settings = dict(checkpoint_sha256=checkpoint_sha256, seed=args.seed, image_size=list(model.image_size),
                    model_config_sha256=hashlib.sha256(model_cfg.encode()).hexdigest(),
                    precision=str(getattr(model, 'precision', 'fp32')), decoding={k: cfg[k] for k in sorted(cfg)})
    if args.seed_mode == 'batch':
        settings['batch_size'] = args.batch_size
    if getattr(args, 'labels', None) is not None:  # class-conditional: what each image is and how it is guided
        settings.update(classes=args.class_list, num_per_class=args.num_per_class, **cond_options(args, model))
    return settings


def cond_options(args, model) -> Dict[str, object]:
    """Guidance of a class-conditional run (the config's defaults unless given)."""
    return dict(guidance=model.guidance if args.guidance is None else args.guidance,
                guidance_schedule=args.guidance_schedule or model.guidance_schedule)


def own_files(out_dir: str) -> List[str]:
    """Names in ``out_dir`` that this tool writes (images, npz, grid, settings)."""
    return sorted(n for n in os.listdir(out_dir)
                  if _IMAGE_RE.match(n) or n in (NPZ_FILE, GRID_FILE, SETTINGS_FILE, LABELS_FILE))


def refuse_symlinks(out_dir: str) -> None:
    """Refuse a folder in which any file this tool writes is a symbolic link (it would write elsewhere)."""
    links = [n for n in own_files(out_dir) + [LOCK_FILE] if osp.islink(osp.join(out_dir, n))]
    if links:
        raise SystemExit(f'refusing to write into {out_dir}: {", ".join(links[:5])} '
                         f'{"is a symbolic link" if len(links) == 1 else "are symbolic links"} '
                         f'(-> {os.readlink(osp.join(out_dir, links[0]))}); nothing is written through links. '
                         'Remove the link(s) or use another --out-dir')


def remove_temporaries(out_dir: str) -> List[str]:
    """Delete temporary files that killed runs left (called while holding the folder lock)."""
    removed = []
    for name in os.listdir(out_dir):
        if is_temp_name(name) or _OLD_TEMP_RE.match(name):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(osp.join(out_dir, name))
                removed.append(name)
    return removed


class FolderLock:
    """An exclusive ``flock`` on ``DIR/.generate.lock`` for the duration of a run.

    The kernel releases it when the process ends, even by ``kill -9``, so a
    stale lock never blocks a rerun. The file holds the owner's pid and host
    for the message another run prints.
    """

    def __init__(self, out_dir: str) -> None:
        self.path = osp.join(out_dir, LOCK_FILE)
        self.fd = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, 'O_NOFOLLOW', 0), 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(fd, 200).decode(errors='replace').strip() or 'unknown'
            os.close(fd)
            raise SystemExit(f'{osp.dirname(self.path)} is being written by another tools/generate.py run '
                             f'(pid and host: {owner}; lock {self.path}). Wait for it to finish or use another '
                             '--out-dir') from None
        os.ftruncate(fd, 0)
        os.write(fd, f'{os.getpid()} {socket.gethostname()}\n'.encode())
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def check_settings(args, settings) -> bool:
    """Refuse to resume into a folder made with other settings; True when the file must be written.

    With ``--overwrite`` a folder made with other settings (or by an unknown
    run) is cleared of this tool's files first, so that images never mix.
    """
    path = osp.join(args.out_dir, SETTINGS_FILE)
    existing = [n for n in own_files(args.out_dir) if n != SETTINGS_FILE]
    if not osp.isfile(path):
        if existing and not args.overwrite:
            raise SystemExit(f'{args.out_dir} holds {len(existing)} generated file(s) ({existing[0]}, ...) but no '
                             f'{SETTINGS_FILE} recording what made them; use a new --out-dir or --overwrite')
        old = None
    else:
        try:
            with open(path) as f:
                old = json.load(f).get('settings')
        except (OSError, ValueError, AttributeError) as err:
            raise SystemExit(f'cannot read {path} ({err}); use a new --out-dir or --overwrite') from None
    if old == settings:
        return False
    if old is not None or existing:
        if not args.overwrite:
            old = old if isinstance(old, dict) else {}
            diff = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
            raise SystemExit(f'{args.out_dir} holds images generated with other settings ({", ".join(diff)} '
                             f'differ, see {path}); use a new --out-dir or --overwrite')
        for name in own_files(args.out_dir):  # --overwrite: start the folder afresh
            os.unlink(osp.join(args.out_dir, name))
    return True


def write_settings(args, settings) -> None:
    record = dict(settings=settings,
                  info=dict(checkpoint=osp.abspath(args.checkpoint), config=osp.abspath(args.config),
                            num_images=args.num_images, mage_mm_version=mage_mm.__version__))
    with atomic_write(osp.join(args.out_dir, SETTINGS_FILE), 'w', root=args.out_dir) as f:
        json.dump(record, f, indent=2, sort_keys=True)


def save_image(image: np.ndarray, out_dir: str, path: str) -> None:
    with atomic_path(path, root=out_dir) as tmp:
        Image.fromarray(image).save(tmp, format='PNG')


def write_npz(out_dir: str, num_images: int, path: str) -> None:
    """Stream the PNGs into an .npz (``arr_0``) without holding them all in memory; written atomically."""
    first = read_rgb(image_path(out_dir, 0))
    header = dict(descr=np.lib.format.dtype_to_descr(np.dtype(np.uint8)), fortran_order=False,
                  shape=(num_images, *first.shape))
    with atomic_path(path, root=out_dir) as tmp:
        with zipfile.ZipFile(tmp, 'w', compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            with zf.open('arr_0.npy', 'w', force_zip64=True) as f:
                np.lib.format.write_array_header_2_0(f, header)
                for i in range(num_images):
                    img = read_rgb(image_path(out_dir, i))
                    if img.shape != first.shape:
                        raise ValueError(f'{image_path(out_dir, i)} is {img.shape}, expected {first.shape}')
                    f.write(np.ascontiguousarray(img).tobytes())


def prepare_folder(args, settings_fn) -> Tuple[Optional[FolderLock], Optional[str]]:
    """Rank 0: lock, refuse links, clean temporaries, check/write the settings. ``(lock, error message)``."""
    lock = FolderLock(args.out_dir)
    try:
        refuse_symlinks(args.out_dir)
        lock.acquire()
        removed = remove_temporaries(args.out_dir)
        if removed:
            print(f'[generate] removed {len(removed)} temporary file(s) of an interrupted run', flush=True)
        settings = settings_fn()
        if check_settings(args, settings):
            write_settings(args, settings)
        if getattr(args, 'labels', None) is not None:
            from mage_mm.apis.conditional import labels_file_text
            with atomic_write(osp.join(args.out_dir, LABELS_FILE), 'w', root=args.out_dir) as f:
                f.write(labels_file_text(args.labels))
    except SystemExit as err:
        lock.release()
        return None, str(err)
    return lock, None


def setup_distributed():
    world = int(os.environ.get('WORLD_SIZE', '1'))
    rank = int(os.environ.get('RANK', '0'))
    local_rank = int(os.environ.get('LOCAL_RANK', '0'))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend='nccl' if torch.cuda.is_available() else 'gloo')
    return rank, world, local_rank


def main(argv=None) -> int:
    args = parse_args(argv)
    from mage_mm.utils.allocator import tune_malloc_for_tools
    tune_malloc_for_tools()  # glibc malloc tunables (README "Performance"); MAGE_MM_MALLOC=0/1 overrides the default
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {args.checkpoint}')
    from mage_mm.apis import init_generator

    rank, world, local_rank = setup_distributed()
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    if device == 'cuda':
        device = f'cuda:{local_rank}'
    checkpoint_sha256 = file_sha256(args.checkpoint) if rank == 0 else None  # content, not the path
    model = init_generator(args.config, args.checkpoint, device=device, cfg_options=args.cfg_options,
                           precision=args.precision, tokenizer_precision=args.tokenizer_precision,
                           compile=args.compile, attention_precision=args.attention_precision)
    model.tokenizer.release_encoder()  # generation only decodes ids: frees the VQGAN encoder (95 MB official)
    options = decode_options(args)
    model.decoding_options(options)  # validate before any work
    args.labels = None
    if args.classes is not None:
        if not hasattr(model, 'resolve_labels'):
            raise SystemExit(f'--classes needs a class-conditional generation config (type=MAGECondGenerator); '
                             f'{args.config} builds {type(model).__name__}')
        from mage_mm.apis.conditional import class_labels, parse_classes
        from mage_mm.models.generators.guidance import check_guidance
        try:
            args.class_list = parse_classes(args.classes, model.num_classes)
            check_guidance(*cond_options(args, model).values())
        except ValueError as err:
            raise SystemExit(str(err)) from None
        args.labels = class_labels(args.class_list, args.num_per_class)
        args.num_images = len(args.labels)
    os.makedirs(args.out_dir, exist_ok=True)
    lock, error = None, None
    if rank == 0:
        lock, error = prepare_folder(args, lambda: settings_of(args, model, options, checkpoint_sha256))
    if world > 1:  # every rank stops on rank 0's refusal instead of waiting at a barrier
        shared = [error]
        dist.broadcast_object_list(shared, src=0)
        error = shared[0]
    if error is not None:
        raise SystemExit(error)
    try:
        return _generate(args, model, options, rank, world)
    finally:
        if lock is not None:
            lock.release()


def _generate(args, model, options, rank: int, world: int) -> int:
    from mage_mm.apis import image_grid, to_uint8

    work = plan_work(args, rank, world, tuple(model.image_size))
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
        if args.labels is not None:
            images = to_uint8(model.generate(seeds, labels=[args.labels[i] for i in indices],
                                             **cond_options(args, model), **options))
        else:
            images = to_uint8(model.generate(seeds, **options))
        wanted = set(batch)  # batch mode decodes the whole official batch and writes only the missing images
        for idx, img in zip(indices, images):
            if idx < args.num_images and idx in wanted:
                save_image(img, args.out_dir, image_path(args.out_dir, idx))
        if progress is not None:
            progress.update(len(batch))
    if progress is not None:
        progress.close()
    if world > 1:
        dist.barrier()
    if rank == 0:
        if args.grid and args.labels is not None:  # one row per class, up to --grid images in a row
            from mage_mm.apis.conditional import class_grid
            grid = class_grid(lambda i: read_rgb(image_path(args.out_dir, i)), args.labels, args.class_list,
                              per_row=args.grid)
            save_image(grid, args.out_dir, osp.join(args.out_dir, GRID_FILE))
        elif args.grid:
            n = min(args.grid, args.num_images)
            grid = image_grid([read_rgb(image_path(args.out_dir, i)) for i in range(n)])
            save_image(grid, args.out_dir, osp.join(args.out_dir, GRID_FILE))
        if args.npz:
            write_npz(args.out_dir, args.num_images, osp.join(args.out_dir, NPZ_FILE))
        print(f'[generate] done: {args.num_images} images in {args.out_dir}', flush=True)
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return 0


if __name__ == '__main__':
    sys.exit(main())
