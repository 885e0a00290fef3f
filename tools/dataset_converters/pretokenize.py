"""Tokenise a training set once: K augmented views per image into memory-mappable shards (a token cache).

    python tools/dataset_converters/pretokenize.py CONFIG --out DIR [--checkpoint CKPT] [--views 4] [--seed 0]
        [--batch-size 32] [--shard-size 4096] [--max-shards N] [--device cpu] [--no-progress] [--labels]
        [--cfg-options train_dataloader.dataset.data_root=DIR ...]

CONFIG is a MAGE pretraining config: its ``train_dataloader.dataset`` gives the
images, its ``train_pipeline`` (load, RandomResizedCrop, flip, PackInputs) the
views and its data preprocessor + ``model.backbone.tokenizer`` the ids, exactly
as a training step computes them. View ``k`` of image ``i`` is drawn with
Python's and numpy's global RNGs seeded by ``view_seed(seed, i, k)`` (recorded
in the manifest, so any view can be redrawn). ``--checkpoint`` loads the
tokenizer from a MAGE checkpoint (``backbone.tokenizer.*``) instead of the
config's ``init_cfg``.

Output (see :mod:`mage_mm.datasets.token_cache`): ``DIR/manifest.json`` and
``DIR/shard_#####.npy`` (uint16 ids, images × K × tokens) and, with ``--labels``
(the dataset read with ``with_label=True``: class folders), ``DIR/labels.npy``
(one int64 class per image, its sha256 and the class names in the manifest), so
that a class-conditional MAGE trains from the cache too. Every file is
written atomically; a rerun resumes (complete shards are kept, a shard
interrupted mid-write is redone) and refuses a folder made with another
tokenizer, dataset, pipeline, K or seed. Tokenising runs in fp32 (exact ids).
"""
import argparse
import copy
import hashlib
import json
import os
import os.path as osp
import random
import sys
from typing import Any, Dict, List, Optional

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
import numpy as np  # noqa: E402
import torch  # noqa: E402

import mage_mm.compat  # noqa: E402,F401  the version-gated shims

# transforms whose randomness is numpy's / Python's global RNG (seeded per view) or none at all
VIEW_TRANSFORMS = ('LoadImageFromFile', 'RandomResizedCrop', 'RandomResizedCropNoRetry', 'RandomFlip', 'Resize',
                   'ResizeEdge', 'CenterCrop')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Tokenise a dataset once with K augmented views per image')
    parser.add_argument('config', help='MAGE pretraining config')
    parser.add_argument('--out', required=True, help='cache folder')
    parser.add_argument('--checkpoint', help='MAGE checkpoint whose backbone.tokenizer.* weights to use')
    parser.add_argument('--views', type=int, default=4, help='K views per image (default 4)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--shard-size', type=int, default=4096, help='images per shard')
    parser.add_argument('--max-shards', type=int, default=None, help='write at most N shards in this run')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--no-progress', action='store_true')
    parser.add_argument('--labels', action='store_true',
                        help='also store each image\'s class (the dataset read with with_label=True)')
    from mage_mm.utils.cfg_options import SafeDictAction
    parser.add_argument('--cfg-options', nargs='+', action=SafeDictAction, help='override config settings')
    args = parser.parse_args(argv)
    for name in ('views', 'batch_size', 'shard_size'):
        if getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1')
    return args


def _label_of(dataset, index: int, config: str) -> int:
    label = dataset.get_data_info(index).get('gt_label', None)
    label = np.asarray(label).reshape(-1) if label is not None else np.zeros(0)
    if label.size != 1:
        raise SystemExit(f'--labels: image {index} of the dataset of {config} has gt_label {label.tolist()}; one class '
                         'per image is needed (a dataset with class folders, with_label=True)')
    return int(label[0])


def _json(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=repr, sort_keys=True))


def split_pipeline(pipeline: List[dict]):
    """(view transforms, pack transform) of a training pipeline; anything else is refused."""
    if not pipeline or pipeline[-1].get('type') != 'PackInputs':
        raise ValueError('the training pipeline must end with PackInputs')
    views = [dict(t) for t in pipeline[:-1]]
    bad = [t.get('type') for t in views if t.get('type') not in VIEW_TRANSFORMS]
    if bad:
        raise ValueError(f'pretokenize supports single-view pipelines of {VIEW_TRANSFORMS} + PackInputs; the '
                         f'config has {bad} (multi-view or other random transforms cannot be cached as one view)')
    return views, dict(pipeline[-1])


def build_parts(cfg, checkpoint: Optional[str], device: str):
    """(dataset without pipeline, view configs, load / view / pack transforms, preprocessor, tokenizer)."""
    from mmcv.transforms import Compose
    from mmpretrain.registry import DATASETS, MODELS, TRANSFORMS

    ds_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    views, pack = split_pipeline(list(ds_cfg.pop('pipeline')))
    dataset = DATASETS.build(dict(ds_cfg, pipeline=[], lazy_init=False))
    # loading draws nothing from the RNGs: done once per image, the random transforms once per view
    load = [t for t in views[:1] if t.get('type') == 'LoadImageFromFile']
    load_tf = Compose([TRANSFORMS.build(t) for t in load])
    view_tf = Compose([TRANSFORMS.build(t) for t in views[len(load):]])
    pack_tf = TRANSFORMS.build(pack)
    model_cfg = cfg.model
    pre_cfg = model_cfg.get('data_preprocessor') or dict(type='SelfSupDataPreprocessor', mean=[0., 0., 0.],
                                                         std=[255., 255., 255.], to_rgb=True)
    preprocessor = MODELS.build(pre_cfg).to(device)
    tok_cfg = model_cfg.get('backbone', {}).get('tokenizer') or model_cfg.get('target_generator')
    if not tok_cfg:
        raise ValueError('the config has no model.backbone.tokenizer (a MAGEVQGAN)')
    tokenizer = MODELS.build(tok_cfg)
    if checkpoint:
        from mage_mm.utils.checkpoint import safe_load
        ckpt = safe_load(checkpoint, map_location='cpu')
        sd = ckpt.get('state_dict', ckpt)
        for prefix in ('backbone.tokenizer.', 'target_generator.'):
            own = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
            if own:
                break
        if not own:
            raise ValueError(f'{checkpoint} has no backbone.tokenizer.* weights')
        tokenizer.load_state_dict(own, strict=True)
    else:
        tokenizer.init_weights()
    tokenizer.to(device).eval()
    return dataset, views, load_tf, view_tf, pack_tf, preprocessor, tokenizer


def draw_view(results: Dict[str, Any], view_tf, seed: int) -> Dict[str, Any]:
    """One augmented view of a loaded image, with the global RNGs seeded as recorded."""
    random.seed(seed)
    np.random.seed(seed)
    return view_tf(copy.deepcopy(results))


def _load(dataset, load_tf, index: int) -> Dict[str, Any]:
    return load_tf(copy.deepcopy(dataset.get_data_info(index)))


def main(argv=None) -> int:
    args = parse_args(argv)
    from mmengine.config import Config
    from mmengine.dataset import default_collate
    from mmengine.registry import init_default_scope
    from mmengine.utils import import_modules_from_strings

    import mage_mm.register  # noqa: F401  MAGEVQGAN, transforms
    from mage_mm.datasets.token_cache import (
        FORMAT,
        LABELS_FILE,
        MANIFEST,
        SHARD_PATTERN,
        TokenCacheError,
        ids_dtype,
        open_shard,
        tokenizer_sha256,
        view_seed,
    )
    from mage_mm.utils.atomic import atomic_path, atomic_write, remove_stale_temps

    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.labels:
        cfg.train_dataloader.dataset.with_label = True
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    torch.manual_seed(args.seed)  # a config without tokenizer weights (tiny demos): a repeatable random tokenizer
    dataset, views, load_tf, view_tf, pack_tf, preprocessor, tokenizer = build_parts(cfg, args.checkpoint, args.device)
    n = len(dataset)
    if n == 0:
        raise SystemExit(f'the dataset of {args.config} is empty')

    # the grid from one drawn view (the crop size of the pipeline)
    first = draw_view(_load(dataset, load_tf, 0), view_tf, view_seed(args.seed, 0, 0))
    h, w = first['img'].shape[:2]
    grid = list(tokenizer.token_grid(h, w))
    files = [str(dataset.get_data_info(i).get('img_path', i)) for i in range(n)]
    settings = dict(
        format=FORMAT, tokenizer_sha256=tokenizer_sha256(tokenizer), tokenizer_arch=_json(tokenizer.arch),
        num_codes=int(tokenizer.num_codes), token_grid=grid, image_size=[int(h), int(w)], num_views=args.views,
        seed=args.seed, seed_rule='sha256(f"{seed}:{image}:{view}")[:4] little-endian -> random.seed + np.random.seed',
        num_images=n, shard_size=args.shard_size, dtype=ids_dtype(tokenizer.num_codes).str,
        dataset_sha256=hashlib.sha256('\n'.join(files).encode()).hexdigest(), view_pipeline=_json(views))
    if args.labels:
        labels = np.asarray([_label_of(dataset, i, args.config) for i in range(n)], dtype=np.int64)
        settings.update(labels_file=LABELS_FILE, labels_sha256=hashlib.sha256(labels.tobytes()).hexdigest(),
                        classes=_json(list(dataset.metainfo.get('classes') or [])))
    shards = [dict(file=SHARD_PATTERN.format(s), start=s * args.shard_size,
                   stop=min(n, (s + 1) * args.shard_size), complete=False) for s in range(-(-n // args.shard_size))]

    os.makedirs(args.out, exist_ok=True)
    remove_stale_temps(args.out)  # what a killed earlier run left behind
    manifest_path = osp.join(args.out, MANIFEST)
    if osp.isfile(manifest_path):
        with open(manifest_path) as f:
            old = json.load(f)
        diff = sorted(k for k in settings if old.get(k) != settings[k])
        if diff:
            raise TokenCacheError(f'{args.out} holds a token cache made with other settings ({", ".join(diff)} '
                                  f'differ, see {manifest_path}); use another --out')
        shards = old['shards']
    manifest = dict(settings, shards=shards)

    def save_manifest():
        with atomic_write(manifest_path, 'w') as f:
            json.dump(manifest, f, indent=1, sort_keys=True)

    if args.labels:  # before the manifest names it: a reader never sees a manifest whose labels file is missing
        with atomic_path(osp.join(args.out, LABELS_FILE)) as tmp:
            with open(tmp, 'wb') as f:
                np.save(f, labels, allow_pickle=False)

    save_manifest()
    for shard in shards:
        if shard.get('complete'):
            try:
                open_shard(args.out, shard, manifest)
            except TokenCacheError as exc:  # a complete shard that is not there any more: redo it
                print(f'[pretokenize] redoing {shard["file"]}: {exc}', flush=True)
                shard['complete'] = False
    todo = [s for s in shards if not s.get('complete')]
    if args.max_shards is not None:
        todo = todo[:args.max_shards]
    progress = None
    if not args.no_progress:
        from tqdm import tqdm
        progress = tqdm(total=sum(s['stop'] - s['start'] for s in todo), desc='pretokenize', unit='img')
    dtype = np.dtype(manifest['dtype'])
    for shard in todo:
        path = osp.join(args.out, shard['file'])
        count = shard['stop'] - shard['start']
        with atomic_path(path) as tmp:
            arr = np.lib.format.open_memmap(tmp, mode='w+', dtype=dtype,
                                            shape=(count, args.views, grid[0] * grid[1]))
            items = [(i, k) for i in range(shard['start'], shard['stop']) for k in range(args.views)]
            loaded: Dict[int, Dict[str, Any]] = {}
            for b in range(0, len(items), args.batch_size):
                chunk = items[b:b + args.batch_size]
                packed = []
                for i, k in chunk:
                    if i not in loaded:
                        loaded = {i: _load(dataset, load_tf, i)}  # one image at a time in memory
                    packed.append(pack_tf(draw_view(loaded[i], view_tf, view_seed(args.seed, i, k))))
                batch = default_collate(packed)  # the training config's collate_fn
                with torch.no_grad():
                    images = preprocessor(batch, training=True)['inputs']
                    images = images[0] if isinstance(images, (list, tuple)) else images
                    ids = tokenizer.encode(images.to(args.device)).cpu().numpy()
                for (i, k), row in zip(chunk, ids):
                    arr[i - shard['start'], k] = row
                if progress is not None:
                    progress.update(sum(k == args.views - 1 for _, k in chunk))  # images whose views are done
            arr.flush()
            digest = hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()
            del arr
        shard.update(complete=True, sha256=digest)
        save_manifest()  # after the shard's rename: a kill in between only redoes this shard
    if progress is not None:
        progress.close()
    done = sum(s.get('complete', False) for s in shards)
    print(f'[pretokenize] {done}/{len(shards)} shards complete in {args.out} ({n} images x {args.views} views, '
          f'{grid[0]}x{grid[1]} tokens)', flush=True)
    return 0 if done == len(shards) else 3


if __name__ == '__main__':
    sys.exit(main())
