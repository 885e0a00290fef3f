"""Safe checkpoint loading for mmengine on torch>=2.6.

mmengine 0.10.7 calls ``torch.load`` without ``weights_only``. torch>=2.6
defaults to ``weights_only=True`` and then rejects mmengine's own Runner
checkpoints: ``HistoryBuffer.__getstate__`` pickles its statistics functions,
which needs the ``getattr`` global. Turning safe loading off would let any
checkpoint from elsewhere (``load_from``, ``init_cfg=Pretrained``, converter
input) run code on load. Instead we:

1. make ``HistoryBuffer`` pickle only data (``__setstate__`` restores the
   default statistics anyway), so Runner checkpoints written with mage_mm
   imported contain tensors, numbers, strings, numpy arrays and
   ``HistoryBuffer`` objects only;
2. register a local-file loader for mmengine's ``CheckpointLoader`` that uses
   ``weights_only=True`` with the explicit allow-list :data:`SAFE_GLOBALS`.

Checkpoints written by an unpatched mmengine still reference ``getattr`` and
are refused with a message. A user who trusts such a file can opt in for that
exact file with ``MAGE_MM_TRUSTED_CHECKPOINTS=/abs/path.pth[:/other.pth]``.
"""
import codecs
import os
import os.path as osp
import pickle
import zipfile
from typing import Any, Callable, List, Optional, Union

import numpy as np
import torch

TRUST_ENV = 'MAGE_MM_TRUSTED_CHECKPOINTS'


class CorruptCheckpointError(RuntimeError):
    """A checkpoint file that is truncated, empty or not a torch file (the message names it)."""


def _numpy_globals() -> List[Any]:
    multiarray = getattr(np, '_core', None)
    multiarray = multiarray.multiarray if multiarray is not None else np.core.multiarray
    dtypes = [type(np.dtype(name)) for name in ('float64', 'float32', 'float16', 'int64', 'int32', 'int16',
                                                'int8', 'uint8', 'bool')]
    return [np.ndarray, np.dtype, multiarray._reconstruct, multiarray.scalar, *dtypes]


def safe_globals() -> List[Any]:
    """The allow-list: what mmengine Runner checkpoints and official MAGE files need."""
    from mmengine.logging.history_buffer import HistoryBuffer
    return [HistoryBuffer, codecs.encode, *_numpy_globals()]


def _trusted_paths() -> List[str]:
    return [osp.realpath(p) for p in os.environ.get(TRUST_ENV, '').split(os.pathsep) if p]


def safe_load(filename: Union[str, os.PathLike], map_location: Optional[Union[str, Callable, torch.device]] = None,
              extra_globals: Optional[List[Any]] = None) -> Any:
    """``torch.load`` with ``weights_only=True`` and the mage_mm allow-list.

    Args:
        filename (str | PathLike): A local checkpoint file.
        map_location: As for :func:`torch.load`. Defaults to None.
        extra_globals (list, optional): More allowed globals for this call.

    Raises:
        FileNotFoundError: The file does not exist (the message names it).
        pickle.UnpicklingError: The file needs a global outside the allow-list;
            the message names the global and the file.
    """
    filename = osp.expanduser(os.fspath(filename))
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint file not found: {filename}')
    if osp.realpath(filename) in _trusted_paths():
        return torch.load(filename, map_location=map_location, weights_only=False)
    with torch.serialization.safe_globals(safe_globals() + list(extra_globals or [])):
        try:
            return torch.load(filename, map_location=map_location, weights_only=True)
        except (RuntimeError, EOFError, zipfile.BadZipFile) as err:
            # a kill during a non-atomic save, a copy cut short, a zero-byte file
            raise CorruptCheckpointError(f'{filename} is not a readable checkpoint (truncated or corrupt: '
                                         f'{type(err).__name__}: {str(err).strip()[:160] or "end of file"})') from err
        except pickle.UnpicklingError as err:
            first_line = str(err).strip().splitlines()[0] if str(err).strip() else repr(err)
            unsupported = [line.strip() for line in str(err).splitlines() if 'Unsupported global' in line]
            if not unsupported and 'Unsupported operand' in str(err):
                raise CorruptCheckpointError(f'{filename} is not a readable checkpoint (corrupt pickle data: '
                                             f'{[ln for ln in str(err).splitlines() if "operand" in ln][0]})') from None
            raise pickle.UnpicklingError(
                f'refusing to unpickle {filename}: it needs objects outside mage_mm\'s allow-list '
                f'({unsupported[0] if unsupported else first_line}). Checkpoints from elsewhere are '
                'loaded with weights_only=True so that they cannot run code. If this is an mmengine '
                'checkpoint written without mage_mm imported and you trust it, allow this one file with '
                f'{TRUST_ENV}={osp.realpath(filename)}') from None


def _history_buffer_getstate(self) -> dict:
    # only data: __setstate__ restores the default statistics methods
    state = dict(self.__dict__)
    state.pop('statistics_methods', None)
    return state


_INSTALLED = False


def install_safe_checkpoint_loading() -> None:
    """Patch ``HistoryBuffer`` pickling and mmengine's local checkpoint loader (idempotent)."""
    global _INSTALLED
    if _INSTALLED:
        return
    from mmengine.logging.history_buffer import HistoryBuffer
    from mmengine.runner.checkpoint import CheckpointLoader

    HistoryBuffer.__getstate__ = _history_buffer_getstate

    @CheckpointLoader.register_scheme(prefixes='', force=True)
    def load_from_local(filename, map_location):
        return safe_load(filename, map_location=map_location)

    _INSTALLED = True
