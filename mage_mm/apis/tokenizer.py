"""Find, export and load a trained :class:`MAGEVQGAN` from the checkpoints that contain one.

Accepted sources (all read with :func:`mage_mm.utils.checkpoint.safe_load`):

* a ``VQGANTokenizerTrainer`` Runner checkpoint: keys ``tokenizer.*``;
* a MAGE pretraining checkpoint: keys ``target_generator.*``;
* a plain tokenizer state dict (exported, converted or official layout);
* a work dir: the checkpoint named in its ``last_checkpoint`` file.
"""
import os.path as osp
from typing import Dict, Optional, Tuple, Union

import torch

from ..models.tokenizers.vqgan import MAGEVQGAN
from ..utils.checkpoint import safe_load

#: prefix of the tokenizer inside a VQGANTokenizerTrainer checkpoint
TOKENIZER_PREFIX = 'tokenizer.'
_PREFIXES = (TOKENIZER_PREFIX, 'target_generator.', 'backbone.tokenizer.')


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
    """The plain ``MAGEVQGAN`` state dict (no prefix) inside a loaded checkpoint."""
    sd = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(sd, dict) or not sd:
        raise KeyError(f'{source} holds no state dict')
    for prefix in _PREFIXES:
        sub = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
        if sub:
            return sub
    if 'quantize.embedding.weight' in sd:
        return dict(sd)
    raise KeyError(f'{source} contains no tokenizer: expected keys starting with {_PREFIXES} or a plain '
                   f'MAGEVQGAN state dict; first keys: {sorted(sd)[:5]}')


def tokenizer_arch(checkpoint: dict, state_dict: Dict[str, torch.Tensor]) -> Union[str, dict]:
    """The tokenizer architecture: from the checkpoint's meta, else the built-in arch whose shapes match."""
    meta = checkpoint.get('meta', {}) if isinstance(checkpoint, dict) else {}
    if isinstance(meta, dict):
        if meta.get('tokenizer_arch') is not None:
            return meta['tokenizer_arch']
        if isinstance(meta.get('cfg'), str):
            from mmengine.config import Config
            try:
                model = Config.fromstring(meta['cfg'], '.py').model
                tok = model.get('tokenizer') or model.get('target_generator') or {}
                if tok.get('arch') is not None:
                    arch = tok['arch']
                    return arch if isinstance(arch, str) else dict(arch)
            except Exception:  # noqa: BLE001  an unparsable cfg text: fall back to the shapes
                pass
    shapes = {k: tuple(v.shape) for k, v in state_dict.items()}
    for name in MAGEVQGAN.arch_zoo:
        with torch.device('meta'):
            candidate = MAGEVQGAN(arch=name)
        if {k: tuple(v.shape) for k, v in candidate.state_dict().items()} == shapes:
            return name
    raise ValueError('cannot tell the tokenizer architecture: no meta in the checkpoint and the shapes match none '
                     f'of {sorted(MAGEVQGAN.arch_zoo)}; pass the arch explicitly')


def read_tokenizer(path: str) -> Tuple[Dict[str, torch.Tensor], Union[str, dict], str]:
    """``(state_dict, arch, checkpoint_file)`` of the tokenizer stored at ``path`` (file or work dir)."""
    path = resolve_checkpoint(path)
    checkpoint = safe_load(path, map_location='cpu')
    sd = tokenizer_state_dict(checkpoint, source=path)
    return sd, tokenizer_arch(checkpoint, sd), path


def load_tokenizer(path: str, arch: Optional[Union[str, dict]] = None) -> MAGEVQGAN:
    """A frozen ``MAGEVQGAN`` with the weights stored at ``path``, loaded strictly."""
    sd, found_arch, _ = read_tokenizer(path)
    model = MAGEVQGAN(arch=arch if arch is not None else found_arch, frozen=True)
    model.load_state_dict(sd, strict=True)
    return model
