"""Find, export and load a trained :class:`MAGEVQGAN` from the checkpoints that contain one.

Accepted sources (all read with :func:`mage_mm.utils.checkpoint.safe_load`):

* a ``VQGANTokenizerTrainer`` Runner checkpoint: keys ``tokenizer.*``;
* a checkpoint of any model that contains the tokenizer (MAGE pretraining,
  generation, linear probe, fine-tuning, detection): keys ``backbone.tokenizer.*``;
* a plain tokenizer state dict (exported, converted or official layout);
* a work dir: the checkpoint named in its ``last_checkpoint`` file.
"""
import os.path as osp
from typing import Any, Dict, Optional, Tuple, Union

import torch

from ..models.tokenizers.vqgan import ARCH_METADATA_KEY, MAGEVQGAN
from ..utils.checkpoint import (
    TOKENIZER_KEY_PREFIX,
    TRAINER_TOKENIZER_PREFIX,
    CheckpointContentError,
    safe_load,
    state_dict_from,
    strip_prefix,
)

_PREFIXES = (TRAINER_TOKENIZER_PREFIX, TOKENIZER_KEY_PREFIX)


def resolve_checkpoint(path: str) -> str:
    """A checkpoint file, or the one a work dir's ``last_checkpoint`` names."""
    if osp.isdir(path):
        marker = osp.join(path, 'last_checkpoint')
        if not osp.isfile(marker):
            raise FileNotFoundError(f'{path} is a folder without a last_checkpoint file; pass a checkpoint file')
        with open(marker) as f:
            ckpt = f.read().strip()
        if not osp.isabs(ckpt) and not osp.isfile(ckpt):
            ckpt = osp.join(path, osp.basename(ckpt))
        path = ckpt
    if not osp.isfile(path):
        raise FileNotFoundError(f'tokenizer checkpoint not found: {path}')
    return path


def tokenizer_state_dict(checkpoint: dict, source: str = 'checkpoint') -> Dict[str, torch.Tensor]:
    """The plain ``MAGEVQGAN`` state dict (no prefix) inside a loaded checkpoint.

    Raises:
        CheckpointContentError: (a ``ValueError``) no state dict, or no tokenizer in it.
    """
    sd = state_dict_from(checkpoint, source)
    for prefix in _PREFIXES:
        sub = strip_prefix(sd, prefix)
        if sub:
            return sub
    if 'quantize.embedding.weight' in sd:
        return dict(sd)
    raise CheckpointContentError(f'{source} contains no tokenizer: expected keys starting with {_PREFIXES} or a '
                                 f'plain MAGEVQGAN state dict; first keys: {sorted(sd)[:5]}')


def _tokenizer_prefix(state_dict: dict) -> str:
    """The key prefix under which :func:`tokenizer_state_dict` finds the tokenizer ('' for a plain one)."""
    for prefix in _PREFIXES:
        if any(k.startswith(prefix) for k in state_dict):
            return prefix
    return ''


def _checked_arch(arch: Any, source: str) -> Union[str, dict]:
    """An arch read from a file: a built-in name or a dict of ints / int lists, nothing else."""
    if isinstance(arch, str):
        if arch not in MAGEVQGAN.arch_zoo:
            raise ValueError(f'{source}: stored tokenizer arch {arch!r} is not one of {sorted(MAGEVQGAN.arch_zoo)}')
        return arch
    keys = {'ch', 'ch_mult', 'num_res_blocks', 'z_channels', 'num_codes'}
    if not isinstance(arch, dict) or set(arch) != keys:
        raise ValueError(f'{source}: stored tokenizer arch must be a name or a dict with keys {sorted(keys)}; '
                         f'got {arch!r}')
    ok = all(type(v) is int for k, v in arch.items() if k != 'ch_mult') and \
        isinstance(arch['ch_mult'], (list, tuple)) and all(type(m) is int for m in arch['ch_mult'])
    if not ok:
        raise ValueError(f'{source}: stored tokenizer arch holds values other than ints: {arch!r}')
    return dict(arch, ch_mult=tuple(arch['ch_mult']))


def tokenizer_arch(checkpoint: dict, state_dict: Dict[str, torch.Tensor],
                   source: str = 'checkpoint') -> Union[str, dict]:
    """The tokenizer architecture, read from data only; never from config text.

    In this order: ``meta['mage_mm']['tokenizer_arch']`` (exported files),
    ``meta['tokenizer_arch']`` (files exported by earlier versions), the
    architecture every ``MAGEVQGAN`` records in its state dict's ``_metadata``
    (Runner checkpoints of the tokenizer trainer, MAGE, classifiers), else the
    built-in arch whose parameter shapes equal the state dict's. The config
    text of ``meta['cfg']`` is Python: evaluating it would run whatever a
    crafted checkpoint put there, so it is never read.

    Args:
        checkpoint (dict): The loaded checkpoint.
        state_dict (dict): The tokenizer's plain state dict (for the shape match).
        source (str): Named in errors. Defaults to ``'checkpoint'``.

    Raises:
        ValueError: No architecture is stored and the shapes match no built-in
            arch (pass ``arch`` explicitly), or the stored value is malformed.
    """
    meta = checkpoint.get('meta', {}) if isinstance(checkpoint, dict) else {}
    meta = meta if isinstance(meta, dict) else {}
    ours = meta.get('mage_mm') if isinstance(meta.get('mage_mm'), dict) else {}
    for stored in (ours.get('tokenizer_arch'), meta.get('tokenizer_arch')):
        if stored is not None:
            return _checked_arch(stored, source)
    full = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, dict) else {}
    metadata = getattr(full, '_metadata', None) or {}
    entry = metadata.get(_tokenizer_prefix(full)[:-1]) if isinstance(metadata, dict) else None
    if isinstance(entry, dict) and entry.get(ARCH_METADATA_KEY) is not None:
        return _checked_arch(entry[ARCH_METADATA_KEY], source)
    shapes = {k: tuple(v.shape) for k, v in state_dict.items()}
    for name in MAGEVQGAN.arch_zoo:
        with torch.device('meta'):
            candidate = MAGEVQGAN(arch=name)
        if {k: tuple(v.shape) for k, v in candidate.state_dict().items()} == shapes:
            return name
    raise ValueError(f'cannot tell the tokenizer architecture of {source}: it stores none as data (files written '
                     'before mage_mm recorded it) and its shapes match none of the built-in archs '
                     f'{sorted(MAGEVQGAN.arch_zoo)}. The config text in its meta is not evaluated (it could run '
                     'code); pass the arch explicitly (load_tokenizer(path, arch=...), --arch)')


def read_tokenizer(path: str, arch: Optional[Union[str, dict]] = None
                   ) -> Tuple[Dict[str, torch.Tensor], Union[str, dict], str]:
    """``(state_dict, arch, checkpoint_file)`` of the tokenizer stored at ``path`` (file or work dir).

    Args:
        path (str): A checkpoint file or a work dir.
        arch (str | dict, optional): The architecture; defaults to None (read
            from the file's data, see :func:`tokenizer_arch`).
    """
    path = resolve_checkpoint(path)
    checkpoint = safe_load(path, map_location='cpu')
    sd = tokenizer_state_dict(checkpoint, source=path)
    return sd, (arch if arch is not None else tokenizer_arch(checkpoint, sd, source=path)), path


def load_tokenizer(path: str, arch: Optional[Union[str, dict]] = None) -> MAGEVQGAN:
    """A frozen ``MAGEVQGAN`` with the weights stored at ``path``, loaded strictly.

    Args:
        path (str): A checkpoint file or a work dir.
        arch (str | dict, optional): Needed only for files that store no
            architecture and match no built-in one. Defaults to None.
    """
    sd, found_arch, _ = read_tokenizer(path, arch)
    model = MAGEVQGAN(arch=found_arch, frozen=True)
    model.load_state_dict(sd, strict=True)
    return model
