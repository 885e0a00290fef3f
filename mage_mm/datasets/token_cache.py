"""Pre-tokenised training data: K augmented views per image, tokenised once (``TokenCacheDataset``).

Layout of a cache folder (written by ``tools/dataset_converters/pretokenize.py``)::

    manifest.json          format, tokenizer content hash, token grid, K, seeds, shards
    shard_00000.npy        uint16 (or int32) array (images_in_shard, K, grid_h * grid_w)
    shard_00001.npy        ...

Shards are plain ``.npy`` files (``np.lib.format``), read with ``mmap_mode='r'``:
nothing is unpickled (``allow_pickle=False``) and a worker touches only the
pages of the items it reads. View ``k`` of image ``i`` was drawn by the training
pipeline's own transforms with numpy's global RNG seeded by
:func:`view_seed` ``(seed, i, k)`` (recorded in the manifest), so it can be
redrawn and checked.

Training from a cache changes the official recipe: the official code draws a
fresh RandomResizedCrop + flip every step; here each image has K fixed views
and each pass over the data uses one of them (see README "Performance").
"""
import hashlib
import json
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from mmpretrain.registry import DATASETS

from ..models.utils.token_ids import TokenCacheError, check_cached_ids, tokenizer_sha256  # noqa: F401

MANIFEST = 'manifest.json'
FORMAT = 'mage_mm.token_cache/1'
SHARD_PATTERN = 'shard_{:05d}.npy'
LABELS_FILE = 'labels.npy'  # optional (pretokenize.py --labels): one int64 class per image


def view_seed(seed: int, image_index: int, view: int) -> int:
    """The numpy seed of view ``view`` of image ``image_index`` (stable across runs and machines)."""
    digest = hashlib.sha256(f'{int(seed)}:{int(image_index)}:{int(view)}'.encode()).digest()
    return int.from_bytes(digest[:4], 'little')


def ids_dtype(num_codes: int) -> np.dtype:
    """Smallest unsigned-enough dtype for ids below ``num_codes``."""
    return np.dtype(np.uint16) if num_codes <= 65536 else np.dtype(np.int32)


def read_manifest(cache_dir: str) -> Dict[str, Any]:
    """The manifest of ``cache_dir``, checked for its format and fields."""
    path = osp.join(cache_dir, MANIFEST)
    if not osp.isfile(path):
        raise TokenCacheError(f'{path} not found: not a token cache (make one with '
                              'tools/dataset_converters/pretokenize.py)')
    try:
        with open(path) as f:
            manifest = json.load(f)
    except (OSError, ValueError) as exc:
        raise TokenCacheError(f'{path} is not valid JSON: {exc}') from exc
    if manifest.get('format') != FORMAT:
        raise TokenCacheError(f"{path}: format {manifest.get('format')!r}, expected {FORMAT!r}")
    for key in ('tokenizer_sha256', 'token_grid', 'num_views', 'num_images', 'seed', 'num_codes', 'shards',
                'shard_size', 'dtype'):
        if key not in manifest:
            raise TokenCacheError(f'{path} has no {key!r} entry')
    return manifest


def open_shard(cache_dir: str, shard: Dict[str, Any], manifest: Dict[str, Any]) -> np.ndarray:
    """Memory-map one complete shard and check its header against the manifest."""
    path = osp.join(cache_dir, shard['file'])
    if not shard.get('complete'):
        raise TokenCacheError(f'{path} is not complete (an interrupted pretokenize run: rerun it to resume)')
    try:
        arr = np.load(path, mmap_mode='r', allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise TokenCacheError(f'{path} is not a readable .npy shard: {exc}') from exc
    grid = manifest['token_grid']
    expected = (shard['stop'] - shard['start'], manifest['num_views'], grid[0] * grid[1])
    if arr.shape != expected or arr.dtype != np.dtype(manifest['dtype']):
        raise TokenCacheError(f'{path} holds {arr.dtype} {arr.shape}; the manifest says {manifest["dtype"]} '
                              f'{expected} (images, views, tokens of a {grid[0]}x{grid[1]} grid)')
    return arr


def read_labels(cache_dir: str, manifest: Dict[str, Any]) -> Optional[np.ndarray]:
    """The cache's per-image classes (int64, one per image), checked against the manifest; None without."""
    if 'labels_file' not in manifest:
        return None
    path = osp.join(cache_dir, manifest['labels_file'])
    try:
        labels = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise TokenCacheError(f'{path} is not a readable .npy labels file: {exc}') from exc
    if labels.dtype != np.int64 or labels.shape != (int(manifest['num_images']),):
        raise TokenCacheError(f'{path} holds {labels.dtype} {labels.shape}; the manifest says int64 '
                              f'({manifest["num_images"]},) (one class per image)')
    if hashlib.sha256(labels.tobytes()).hexdigest() != manifest.get('labels_sha256'):
        raise TokenCacheError(f'{path} is corrupt: its sha256 differs from the manifest\'s labels_sha256')
    return labels


def verify_shard(cache_dir: str, shard: Dict[str, Any], manifest: Dict[str, Any]) -> None:
    """Check a shard's bytes against the sha256 the manifest recorded (a corrupt file is an error)."""
    arr = open_shard(cache_dir, shard, manifest)
    digest = hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()
    if digest != shard.get('sha256'):
        raise TokenCacheError(f"{osp.join(cache_dir, shard['file'])} is corrupt: sha256 {digest[:12]}... differs "
                              f"from the manifest's {str(shard.get('sha256'))[:12]}...")


@DATASETS.register_module()
class TokenCacheDataset(torch.utils.data.Dataset):
    """Read a token cache: item ``i`` is one of the K views of image ``i`` (as token ids).

    Each pass over the data uses one view per image: the ``c``-th visit of
    image ``i`` reads view ``perm_i[c % K]`` (``perm_i`` a seeded permutation of
    the K views), so K passes use every view once. The visit counters live in
    shared memory, so dataloader workers (fork or spawn) share them.

    Items are ``dict(inputs=LongTensor (N,), data_samples=DataSample)`` with the
    cache's ``tokenizer_sha256``, ``token_grid``, the image index and view in
    the data sample's metainfo; :class:`MAGE` takes such ids instead of images
    and checks the hash against its own tokenizer. A cache made with
    ``pretokenize.py --labels`` also sets each sample's ``gt_label`` (what
    :class:`MAGECond` trains on) and ``metainfo['classes']``.

    Args:
        cache_dir (str): Folder with ``manifest.json`` and the shards.
        expect_token_grid (Sequence[int], optional): Refuse a cache of another
            grid. Defaults to None.
        verify (bool): Check every shard's sha256 at start (reads the whole
            cache once). Defaults to False (headers and shapes are always checked).
        seed (int): Seed of the per-image view order. Defaults to 0.
        view (int, optional): Always read this view (evaluation, tests).
            Defaults to None.
        data_root, pipeline, ...: Accepted and ignored, so a config can swap
            the ``type`` of an image dataset (``data_root`` is the cache folder
            when ``cache_dir`` is not given).
    """

    def __init__(self,
                 cache_dir: Optional[str] = None,
                 expect_token_grid: Optional[Sequence[int]] = None,
                 verify: bool = False,
                 seed: int = 0,
                 view: Optional[int] = None,
                 data_root: Optional[str] = None,
                 **unused: Any) -> None:
        super().__init__()
        cache_dir = cache_dir or data_root
        if not cache_dir:
            raise TokenCacheError('TokenCacheDataset needs cache_dir')
        self.cache_dir = cache_dir
        self.manifest = read_manifest(cache_dir)
        grid = list(self.manifest['token_grid'])
        if expect_token_grid is not None and list(expect_token_grid) != grid:
            raise TokenCacheError(f'{cache_dir} holds a {grid[0]}x{grid[1]} token grid; this config expects '
                                  f'{expect_token_grid[0]}x{expect_token_grid[1]}')
        self.num_views = int(self.manifest['num_views'])
        if view is not None and not 0 <= view < self.num_views:
            raise TokenCacheError(f'view={view} but {cache_dir} has {self.num_views} views per image')
        self.fixed_view = view
        self.shards = self.manifest['shards']
        self.shard_size = int(self.manifest['shard_size'])
        covered = sum(s['stop'] - s['start'] for s in self.shards)
        if covered != self.manifest['num_images'] or not all(s.get('complete') for s in self.shards):
            raise TokenCacheError(f'{cache_dir} is incomplete ({covered} of {self.manifest["num_images"]} images in '
                                  'complete shards): rerun pretokenize.py to finish it')
        for shard in self.shards:
            (verify_shard if verify else open_shard)(cache_dir, shard, self.manifest)
        self._arrays: Dict[int, np.ndarray] = {}
        n = int(self.manifest['num_images'])
        rng = np.random.default_rng(seed)
        self._orders = torch.from_numpy(np.stack([rng.permutation(self.num_views) for _ in range(n)])
                                        if n else np.zeros((0, self.num_views), np.int64))
        self._visits = torch.zeros(n, dtype=torch.int64).share_memory_()
        self.metainfo = dict(tokenizer_sha256=self.manifest['tokenizer_sha256'], token_grid=grid,
                             num_views=self.num_views)
        self.labels = read_labels(cache_dir, self.manifest)
        if self.labels is not None:
            self.metainfo['classes'] = tuple(self.manifest.get('classes') or ())

    def __len__(self) -> int:
        return int(self.manifest['num_images'])

    def _array(self, shard_index: int) -> np.ndarray:
        # opened lazily per process: a memmap is not shared across fork safely by design
        if shard_index not in self._arrays:
            self._arrays[shard_index] = open_shard(self.cache_dir, self.shards[shard_index], self.manifest)
        return self._arrays[shard_index]

    def tokens(self, index: int, view: int) -> np.ndarray:
        """Ids (N,) of view ``view`` of image ``index``."""
        if not 0 <= index < len(self):
            raise IndexError(f'image {index} not in the cache ({len(self)} images)')
        shard = index // self.shard_size
        return np.asarray(self._array(shard)[index - self.shards[shard]['start'], view])

    def __getitem__(self, index: int) -> Dict[str, Any]:
        from mmpretrain.structures import DataSample
        if self.fixed_view is not None:
            view = self.fixed_view
        else:
            visit = int(self._visits[index])
            self._visits[index] = visit + 1
            view = int(self._orders[index, visit % self.num_views])
        ids = torch.from_numpy(self.tokens(index, view).astype(np.int64))
        sample = DataSample(metainfo=dict(self.metainfo, sample_idx=index, view=view))
        if self.labels is not None:
            sample.set_gt_label(int(self.labels[index]))
        return dict(inputs=ids, data_samples=sample)


__all__: List[str] = ['TokenCacheDataset', 'TokenCacheError', 'tokenizer_sha256', 'view_seed', 'read_manifest',
                      'open_shard', 'verify_shard', 'read_labels', 'LABELS_FILE', 'check_cached_ids', 'ids_dtype',
                      'MANIFEST', 'FORMAT', 'SHARD_PATTERN']
