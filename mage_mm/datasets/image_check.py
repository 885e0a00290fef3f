"""Bad image files fail at start, naming the file, instead of mid-run with an error that names none.

A zero-byte training image gives an OpenCV error without a file name, a corrupt
JPEG a ``Truncated File Read``, and both stop a run hours in. The
:class:`CheckedImageDataset` wrapper checks every file of the dataset it wraps
when it is built (before the first iteration) and either raises
:class:`BadImageError` naming the files, or, with ``on_error='skip'``, leaves
them out and logs how many. Loading errors that still happen later (a file
changed during the run) are re-raised with the file's path.

``tools/train.py`` wraps the train (and val/test) datasets with it; the
top-level config key ``image_check = dict(mode=..., on_error=...)`` sets the
options, ``image_check = None`` turns it off.
"""
import os
from concurrent.futures import ThreadPoolExecutor
from typing import List, Optional, Sequence, Tuple

from mmengine.logging import print_log
from mmpretrain.registry import DATASETS

MODES = ('decode', 'header', 'size', 'auto')
#: ``mode='auto'`` decodes every image of datasets up to this size and reads headers only above it
AUTO_DECODE_LIMIT = 20000


class BadImageError(ValueError):
    """Files of a dataset that are empty, not images, or corrupt (the message names them)."""


def check_image_file(path: str, mode: str = 'decode') -> Optional[str]:
    """Why ``path`` is not a usable image, or None.

    Args:
        path (str): The file.
        mode (str): ``'size'`` (exists, not empty), ``'header'`` (+ PIL
            recognises and verifies it) or ``'decode'`` (+ every pixel
            decodes: catches truncated files). Defaults to ``'decode'``.

    Returns:
        str | None: The reason, e.g. ``'empty file (0 bytes)'``.
    """
    try:
        size = os.stat(path).st_size
    except OSError as err:
        return f'cannot read ({err.strerror or err})'
    if size == 0:
        return 'empty file (0 bytes)'
    if mode == 'size':
        return None
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as img:
            img.verify()
        if mode == 'decode':
            with Image.open(path) as img:
                img.load()  # PIL raises on truncated data unless ImageFile.LOAD_TRUNCATED_IMAGES is set
    except UnidentifiedImageError:
        return 'not an image file'
    except Exception as err:  # noqa: BLE001  every decoder error means the same: unusable
        return f'corrupt image ({type(err).__name__}: {str(err)[:120]})'
    return None


def check_image_files(paths: Sequence[str], mode: str = 'decode', workers: int = 8) -> List[Tuple[int, str, str]]:
    """``(index, path, reason)`` of every bad file, in order (files are checked by a thread pool)."""
    if mode not in MODES or mode == 'auto':
        raise ValueError(f'mode must be one of decode, header, size; got {mode!r}')
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        reasons = list(pool.map(lambda p: check_image_file(p, mode), paths, chunksize=64))
    return [(i, p, r) for i, (p, r) in enumerate(zip(paths, reasons)) if r is not None]


def _data_path(info: dict) -> Optional[str]:
    for key in ('img_path', 'filename', 'img'):
        value = info.get(key)
        if isinstance(value, str):
            return value
    return None


@DATASETS.register_module()
class CheckedImageDataset:
    """Wraps a dataset: its image files are checked when it is built; bad ones raise (or are skipped).

    Args:
        dataset (dict | BaseDataset): The dataset (a config is built in the
            current scope).
        mode (str): ``'decode'``, ``'header'``, ``'size'`` (see
            :func:`check_image_file`) or ``'auto'``: ``'decode'`` up to
            :data:`AUTO_DECODE_LIMIT` images, ``'header'`` above. Defaults to ``'auto'``.
        on_error (str): ``'raise'`` (the default) or ``'skip'`` (leave the bad
            files out, log their count and the first ones).
        workers (int): Threads for the check. Defaults to 8.
    """

    def __init__(self, dataset, mode: str = 'auto', on_error: str = 'raise', workers: int = 8) -> None:
        if isinstance(dataset, dict):
            # through mmengine's root registry: the inner type resolves in the current default scope
            # (mmpretrain, mmagic, mmdet ...), not only in mmpretrain's
            from mmengine.registry import DATASETS as ROOT_DATASETS
            dataset = ROOT_DATASETS.build(dataset)
        if mode not in MODES:
            raise ValueError(f'image_check mode must be one of {MODES}; got {mode!r}')
        if on_error not in ('raise', 'skip'):
            raise ValueError(f"image_check on_error must be 'raise' or 'skip'; got {on_error!r}")
        self.dataset = dataset
        infos = [dataset.get_data_info(i) for i in range(len(dataset))] if hasattr(dataset, 'get_data_info') else []
        paths = [_data_path(info) for info in infos]
        self.indices = list(range(len(dataset)))
        if not paths or any(p is None for p in paths):
            print_log(f'image check: {type(dataset).__name__} records no image paths; not checked', logger='current')
            return
        if mode == 'auto':
            mode = 'decode' if len(paths) <= AUTO_DECODE_LIMIT else 'header'
        bad = check_image_files(paths, mode, workers)
        name = type(dataset).__name__
        root = getattr(dataset, 'data_root', '') or ''
        if bad:
            listing = '; '.join(f'{p}: {r}' for _, p, r in bad[:5]) + (' ...' if len(bad) > 5 else '')
            if on_error == 'raise':
                raise BadImageError(f'{len(bad)} of {len(paths)} files of {name} ({root}) are not usable images '
                                    f'({mode} check): {listing}. Remove or replace them, or set image_check = '
                                    "dict(on_error='skip') to train without them.")
            dropped = {i for i, _, _ in bad}
            self.indices = [i for i in self.indices if i not in dropped]
            print_log(f'image check: skipped {len(bad)} of {len(paths)} files of {name} ({root}) that are not '
                      f'usable images ({mode} check): {listing}', logger='current', level=30)
            if not self.indices:
                raise BadImageError(f'no usable image left in {name} ({root})')
        else:
            print_log(f'image check: {len(paths)} files of {name} ({root}) are readable images ({mode} check)',
                      logger='current')

    @property
    def metainfo(self) -> dict:
        return getattr(self.dataset, 'metainfo', {})

    def __len__(self) -> int:
        return len(self.indices)

    def get_data_info(self, idx: int) -> dict:
        return self.dataset.get_data_info(self.indices[idx])

    def __getitem__(self, idx: int):
        real = self.indices[idx]
        try:
            return self.dataset[real]
        except Exception as err:
            info = self.dataset.get_data_info(real) if hasattr(self.dataset, 'get_data_info') else {}
            path = _data_path(info) or f'item {real}'
            raise type(err)(f'{path}: {err}') if _reraisable(err) else RuntimeError(f'{path}: {err}') from err

    def __getattr__(self, name):
        # everything else (CLASSES, data_root, pipeline ...) from the wrapped dataset
        if name in ('dataset', 'indices'):
            raise AttributeError(name)
        return getattr(self.dataset, name)


def _reraisable(err: Exception) -> bool:
    try:
        type(err)('x')
        return True
    except Exception:  # noqa: BLE001
        return False


def wrap_datasets(cfg, keys: Sequence[str] = ('train_dataloader', 'val_dataloader', 'test_dataloader')) -> None:
    """Wrap the datasets of ``cfg``'s loaders with :class:`CheckedImageDataset` (top-level ``image_check`` options).

    ``image_check = None`` in the config turns the check off.
    """
    if 'image_check' in cfg and cfg.image_check is None:
        return
    options = dict(cfg.get('image_check', None) or {})
    for key in keys:
        loader = cfg.get(key, None)
        if not isinstance(loader, dict) or not isinstance(loader.get('dataset'), dict):
            continue
        if loader['dataset'].get('type') in ('CheckedImageDataset', 'mmpretrain.CheckedImageDataset'):
            continue
        # scoped name: found from the mmagic / mmdet scopes of the generation and detection configs too
        loader['dataset'] = dict(type='mmpretrain.CheckedImageDataset', dataset=loader['dataset'], **options)


__all__ = ['BadImageError', 'CheckedImageDataset', 'check_image_file', 'check_image_files', 'wrap_datasets']
