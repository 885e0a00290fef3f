"""Safe checkpoint loading for mmengine on torch>=2.6.

mmengine 0.10.7 calls ``torch.load`` without ``weights_only``. torch>=2.6
defaults to ``weights_only=True`` and then rejects mmengine's own Runner
checkpoints: ``HistoryBuffer.__getstate__`` pickles its statistics methods
(``HistoryBuffer.min`` ...), which protocol 2 writes as ``getattr(HistoryBuffer, 'min')``,
and the message hub holds numpy arrays. Turning safe loading off would let any
checkpoint from elsewhere (``load_from``, ``init_cfg=Pretrained``, converter
input) run code on load. Instead :func:`safe_load` uses ``weights_only=True`` with
the explicit allow-list :func:`safe_globals`, in which ``builtins.getattr`` is
replaced by :func:`history_buffer_getattr`: it returns only ``HistoryBuffer``'s own
statistics methods and refuses anything else. Checkpoints written by an unpatched
mmengine therefore load as they are; nothing in mmengine is patched here
(:mod:`mage_mm.compat` routes mmengine's local checkpoint loader through
:func:`safe_load`, gated on the versions that need it).

A file that needs another global is refused with a message. A user who trusts
such a file can opt in for that exact file with
``MAGE_MM_TRUSTED_CHECKPOINTS=/abs/path.pth[:/other.pth]``.
"""
import codecs
import fnmatch
import os
import os.path as osp
import pickle
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

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


def history_buffer_getattr(obj: Any, name: str) -> Any:
    """Stand-in for ``builtins.getattr`` while unpickling: only ``HistoryBuffer``'s statistics methods.

    mmengine's ``HistoryBuffer.__getstate__`` saves ``{'min': HistoryBuffer.min, ...}``, pickled as
    ``getattr(HistoryBuffer, 'min')``. Any other ``getattr`` in a checkpoint is refused.
    """
    from mmengine.logging.history_buffer import HistoryBuffer
    if obj is HistoryBuffer and isinstance(name, str) and callable(vars(HistoryBuffer).get(name)):
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(f'refusing getattr({obj!r}, {name!r}) while unpickling: only HistoryBuffer '
                                 'statistics methods are allowed')


def safe_globals() -> List[Any]:
    """The allow-list: what mmengine Runner checkpoints and official MAGE files need."""
    from mmengine.logging.history_buffer import HistoryBuffer
    return [HistoryBuffer, codecs.encode, (history_buffer_getattr, 'builtins.getattr'), *_numpy_globals()]


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
                'loaded with weights_only=True so that they cannot run code. If you trust this file, '
                'allow this one file with '
                f'{TRUST_ENV}={osp.realpath(filename)}') from None


# ------------------------------------------------------------ state dicts out of checkpoints
#: where each model that contains the MAGE tokenizer keeps it (one prefix for all: pretraining, generation,
#: linear probe, fine-tuning, detection; ``MAGENetworkMixin`` / ``MAGEViT.tokenizer``)
TOKENIZER_KEY_PREFIX = 'backbone.tokenizer.'
#: the tokenizer inside a ``VQGANTokenizerTrainer`` Runner checkpoint (the trainer's own attribute)
TRAINER_TOKENIZER_PREFIX = 'tokenizer.'


class CheckpointContentError(ValueError):
    """A checkpoint file loads but does not hold what the caller needs (the message names the file and keys)."""


def state_dict_from(checkpoint: Any, source: str = 'checkpoint') -> Dict[str, torch.Tensor]:
    """The tensors of a loaded checkpoint, whatever wrote it.

    Accepted: an mmengine checkpoint (its ``'state_dict'`` entry), an official
    MAGE ``main_*.py`` file (its ``'model'`` entry) or a flat dict of tensors
    (an exported or converted state dict). A DDP ``module.`` prefix on every
    key is removed. The one helper for this in mage_mm: the generator loader,
    the tokenizer reader, the official converter and ``MAGECond`` all use it.

    Args:
        checkpoint (Any): What :func:`safe_load` returned.
        source (str): Names the file in error messages. Defaults to ``'checkpoint'``.

    Raises:
        CheckpointContentError: No such entry, an empty one, or non-tensor
            values (the message lists the top-level keys or the first bad key).
    """
    if not isinstance(checkpoint, dict):
        raise CheckpointContentError(f'{source}: expected a dict checkpoint, got {type(checkpoint).__name__}')
    sd = next((checkpoint[k] for k in ('state_dict', 'model') if isinstance(checkpoint.get(k), dict)), None)
    if sd is None:
        if checkpoint and all(torch.is_tensor(v) for v in checkpoint.values()):
            sd = checkpoint
        else:
            raise CheckpointContentError(
                f'{source}: no state dict found: expected a "state_dict" (mmengine) or "model" (official MAGE) '
                f'entry or a flat dict of tensors; top-level keys are: {first_keys(checkpoint.keys())}')
    bad = [k for k, v in sd.items() if not torch.is_tensor(v)]
    if not sd or bad:
        raise CheckpointContentError(f'{source}: the state dict is empty' if not sd else
                                     f'{source}: state dict entries that are not tensors: {first_keys(bad)}')
    if all(k.startswith('module.') for k in sd):
        # keep torch's per-module _metadata (versions, MAGEVQGAN's arch) under the stripped names
        stripped = OrderedDict((k[len('module.'):], v) for k, v in sd.items())
        meta = getattr(sd, '_metadata', None)
        if meta is not None:
            stripped._metadata = OrderedDict(('' if m == 'module' else m[len('module.'):] if m.startswith('module.')
                                              else m, v) for m, v in meta.items())
        sd = stripped
    return sd


def read_state_dict(path: Union[str, os.PathLike], map_location: Optional[Union[str, Callable, torch.device]] = 'cpu',
                    extra_globals: Optional[List[Any]] = None) -> Tuple[Dict[str, torch.Tensor], Any]:
    """``(state_dict, checkpoint)`` of a checkpoint file: :func:`safe_load` then :func:`state_dict_from`."""
    checkpoint = safe_load(path, map_location=map_location, extra_globals=extra_globals)
    return state_dict_from(checkpoint, source=os.fspath(path)), checkpoint


def strip_prefix(state_dict: Dict[str, torch.Tensor], prefix: str) -> Dict[str, torch.Tensor]:
    """The entries under ``prefix``, with the prefix removed (empty when none)."""
    return {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}


def first_keys(keys: Iterable[str], n: int = 8) -> str:
    """The first ``n`` of ``keys`` in sorted order, for error messages (``a, b ... (12 in all)``)."""
    keys = sorted(keys)
    return ', '.join(keys[:n]) + (f' ... ({len(keys)} in all)' if len(keys) > n else '')


@dataclass(frozen=True)
class StateDictFit:
    """How a checkpoint's state dict fits a model's: the one comparison behind every strict load in mage_mm.

    Used by the strict ``Pretrained`` init (``models/utils/pretrained.py``), the ``load_from`` check
    (``engine/runner_checks.py``), the generator loader and ``MAGECond``; each adds its own context
    (file, prefix, hint) to :meth:`problems`.

    Attributes:
        num_model_keys (int): How many keys the model has.
        missing (tuple[str]): Model keys the checkpoint lacks (allowed ones excluded), sorted.
        unexpected (tuple[str]): Checkpoint keys the model lacks (allowed ones excluded), sorted.
        mismatched (tuple[str]): ``'key: checkpoint (shape) vs model (shape)'`` for keys of both, sorted.
        num_shared (int): Keys in both (0: a checkpoint of another model, or a wrong prefix).
    """
    num_model_keys: int
    missing: Tuple[str, ...]
    unexpected: Tuple[str, ...]
    mismatched: Tuple[str, ...]
    num_shared: int

    @property
    def fits(self) -> bool:
        """Every key of both sides present on the other (allowed ones aside), with equal shapes."""
        return not (self.missing or self.unexpected or self.mismatched)

    def problems(self, model_name: str) -> List[str]:
        """One phrase per kind of mismatch, naming the first keys (empty when it fits)."""
        out = []
        if self.missing:
            out.append(f'{len(self.missing)} of {model_name}\'s {self.num_model_keys} keys are missing '
                       f'({first_keys(self.missing)})')
        if self.unexpected:
            out.append(f'{len(self.unexpected)} checkpoint keys are not in {model_name} '
                       f'({first_keys(self.unexpected)})')
        if self.mismatched:
            out.append(f'{len(self.mismatched)} shapes differ ({"; ".join(self.mismatched[:4])})')
        return out


def compare_state_dicts(own: Dict[str, Any], state_dict: Dict[str, Any], allowed_missing: Sequence[str] = (),
                        allowed_unexpected: Sequence[str] = ()) -> StateDictFit:
    """Compare a checkpoint's ``state_dict`` with a model's ``own`` (its ``state_dict()``), keys and shapes.

    Args:
        own (dict): The model's state dict.
        state_dict (dict): The checkpoint's (prefix already stripped).
        allowed_missing (Sequence[str]): ``fnmatch`` patterns (plain keys match themselves) of model keys the
            checkpoint may lack, e.g. a new class embedding. Defaults to none.
        allowed_unexpected (Sequence[str]): Patterns of checkpoint keys that may go unused. Defaults to none.

    Returns:
        StateDictFit: What is missing, unexpected or of another shape.
    """
    def allowed(key: str, patterns: Sequence[str]) -> bool:
        return any(fnmatch.fnmatchcase(key, p) for p in patterns)

    shared = sorted(set(own) & set(state_dict))
    return StateDictFit(
        num_model_keys=len(own),
        missing=tuple(sorted(k for k in own if k not in state_dict and not allowed(k, allowed_missing))),
        unexpected=tuple(sorted(k for k in state_dict if k not in own and not allowed(k, allowed_unexpected))),
        mismatched=tuple(f'{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}'
                         for k in shared if hasattr(state_dict[k], 'shape')
                         and tuple(state_dict[k].shape) != tuple(own[k].shape)),
        num_shared=len(shared))


def check_state_dict_fits(own: Dict[str, torch.Tensor], state_dict: Dict[str, torch.Tensor], source: str,
                          target: str, may_miss: Sequence[str] = ()) -> None:
    """Raise unless ``state_dict`` has exactly the keys and shapes of ``own`` (a model's ``state_dict()``).

    Args:
        own (dict): The model's state dict.
        state_dict (dict): The checkpoint's.
        source (str): The checkpoint file, for the message.
        target (str): What it is loaded into, for the message (e.g. ``"the config's MAGEGenerator"``).
        may_miss (Sequence[str]): Model keys the checkpoint may lack (new parts). Defaults to none.

    Raises:
        CheckpointContentError: Naming the mismatched shapes, the missing and the unexpected keys.
    """
    fit = compare_state_dicts(own, state_dict, allowed_missing=may_miss)
    if fit.fits:
        return
    # a tokenizer of another size is the usual cause: say so first
    hint = ('tokenizer/model size mismatch: '
            if any(m.startswith(TOKENIZER_KEY_PREFIX) for m in fit.mismatched) else '')
    raise CheckpointContentError(f'checkpoint {source} does not fit {target}: {hint}'
                                 + '; '.join(fit.problems('the model')))


def require_mage_layout(state_dict: Dict[str, torch.Tensor], source: str) -> None:
    """Raise unless ``state_dict`` is in mage_mm's layout (``backbone.*``...), pointing official files to the converter.

    Raises:
        CheckpointContentError: No ``backbone.*`` key; says so, and that an
            official MAGE file must go through ``tools/model_converters/mage_to_mmpretrain.py``.
    """
    if any(k.startswith('backbone.') for k in state_dict):
        return
    official = any(k.startswith(('blocks.', 'vqgan.', 'token_emb.')) for k in state_dict)
    hint = (' It looks like an official MAGE checkpoint: convert it with '
            'tools/model_converters/mage_to_mmpretrain.py first.') if official else ''
    raise CheckpointContentError(f'{source} has no backbone.* weights; expected a mage_mm MAGE checkpoint '
                                 f'(backbone. with backbone.tokenizer., neck., head.).{hint}')
