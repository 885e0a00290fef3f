"""Conversion between official MAGE checkpoints (LTH14/mage) and mage_mm layouts.

Layouts recognised in the official files (key lists: ``shared/reference/*.tsv``):

* ``pretrain``: ``MaskedGenerativeEncoderViT`` (MAGE and MAGE-C pre-training)
  → :class:`~mage_mm.models.algorithms.MAGE` (``backbone`` with ``backbone.tokenizer``, ``neck``, ``head``).
* ``vqgan``: the tokenizer file ``vqgan_jax_strongaug.ckpt`` → :class:`MAGEVQGAN`.
* ``classifier``: ``VisionTransformerMage`` linear-probe (``head.0`` BN +
  ``head.1`` linear) or fine-tuned (``head``) models → mmpretrain
  ``ImageClassifier`` with a :class:`MAGEViT` backbone that owns the tokenizer.

The legacy tensors that no forward pass uses (``cls_token``, ``pos_embed``,
``patch_embed.*``, ``mask_token``, ``decoder_pos_embed``, ``decoder_pred.*``)
are dropped.
"""
import argparse
import re
from collections import OrderedDict
from typing import Dict, Iterable, List, Optional, Tuple

import torch

from ..utils.checkpoint import TOKENIZER_KEY_PREFIX, CheckpointContentError, safe_load, state_dict_from

LEGACY_KEYS = ('cls_token', 'pos_embed', 'mask_token', 'decoder_pos_embed')
LEGACY_PREFIXES = ('patch_embed.', 'decoder_pred.')

_VQGAN_RE = re.compile(r'^(encoder|decoder)\.|^quantize\.embedding\.weight$')
_BLOCK_RE = re.compile(r'^blocks\.\d+\.(norm1|norm2|attn\.qkv|attn\.proj|mlp\.fc1|mlp\.fc2)\.(weight|bias)$')
_DEC_BLOCK_RE = re.compile(
    r'^decoder_blocks\.\d+\.(norm1|norm2|attn\.qkv|attn\.proj|mlp\.fc1|mlp\.fc2)\.(weight|bias)$')
_TOKEN_EMB = ('token_emb.position_ids', 'token_emb.word_embeddings.weight',
              'token_emb.position_embeddings.weight', 'token_emb.LayerNorm.weight', 'token_emb.LayerNorm.bias')


class CheckpointLayoutError(KeyError):
    """The checkpoint does not have a layout the converter knows."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ''


def _sample(keys: Iterable[str], n: int = 12) -> str:
    keys = sorted(keys)
    more = f' … (+{len(keys) - n} more)' if len(keys) > n else ''
    return ', '.join(keys[:n]) + more


def detect_layout(sd: Dict[str, torch.Tensor]) -> str:
    keys = set(sd)
    if 'decoder_embed.weight' in keys or 'mlm_layer.fc.weight' in keys:
        return 'pretrain'
    if 'encoder.conv_in.weight' in keys and 'quantize.embedding.weight' in keys and not any(
            k.startswith('blocks.') for k in keys):
        return 'vqgan'
    if any(k.startswith('blocks.') for k in keys) and ('head.weight' in keys or 'head.1.weight' in keys):
        return 'classifier'
    if any(k.startswith('backbone.') for k in keys):
        raise CheckpointLayoutError('this looks like a checkpoint that is already in mage_mm/mmpretrain layout '
                                    f'(keys start with "backbone."): {_sample(keys)}')
    raise CheckpointLayoutError(f'unknown checkpoint layout; keys: {_sample(keys)}')


def _split(sd: Dict[str, torch.Tensor], ignore: Optional[str]) -> Dict[str, torch.Tensor]:
    pattern = re.compile(ignore) if ignore else None
    return {k: v for k, v in sd.items() if not (pattern and pattern.search(k))}


def _require(keys: Iterable[str], present: Iterable[str], layout: str) -> None:
    missing = sorted(set(keys) - set(present))
    if missing:
        raise CheckpointLayoutError(f'official {layout} checkpoint is missing {len(missing)} key(s): '
                                    f'{_sample(missing)}')


def _reject_unknown(unknown: List[str], layout: str) -> None:
    if unknown:
        raise CheckpointLayoutError(f'official {layout} checkpoint has {len(unknown)} unexpected key(s): '
                                    f'{_sample(unknown)}. Pass --ignore-keys REGEX to drop them on purpose.')


def _num_blocks(keys: Iterable[str], prefix: str) -> int:
    ids = {int(k.split('.')[1]) for k in keys if k.startswith(prefix)}
    if ids and ids != set(range(len(ids))):
        raise CheckpointLayoutError(f'{prefix}* indices are not contiguous: {sorted(ids)}')
    return len(ids)


_BLOCK_PARAMS = [f'{m}.{p}' for m in ('norm1', 'attn.qkv', 'attn.proj', 'norm2', 'mlp.fc1', 'mlp.fc2')
                 for p in ('weight', 'bias')]


def _block_keys(prefix: str, depth: int) -> List[str]:
    return [f'{prefix}{i}.{p}' for i in range(depth) for p in _BLOCK_PARAMS]


def _vqgan_required(sd: Dict[str, torch.Tensor], prefix: str = '') -> List[str]:
    return [prefix + k for k in ('encoder.conv_in.weight', 'encoder.conv_out.weight', 'decoder.conv_in.weight',
                                 'decoder.conv_out.weight', 'quantize.embedding.weight')]


def convert_vqgan(sd: Dict[str, torch.Tensor], prefix: str = '') -> 'OrderedDict[str, torch.Tensor]':
    """Official tokenizer keys (optionally under ``prefix``) → :class:`MAGEVQGAN` keys."""
    _require(_vqgan_required(sd, prefix), sd, 'tokenizer')
    out = OrderedDict()
    for k, v in sd.items():
        if k.startswith(prefix) and _VQGAN_RE.search(k[len(prefix):]):
            out[k[len(prefix):]] = v
    return out


def convert_pretrain(sd: Dict[str, torch.Tensor], with_tokenizer: bool = True) -> 'OrderedDict[str, torch.Tensor]':
    """Official ``MaskedGenerativeEncoderViT`` state dict → :class:`MAGE` state dict."""
    depth = _num_blocks(sd, 'blocks.')
    dec_depth = _num_blocks(sd, 'decoder_blocks.')
    required = list(_TOKEN_EMB) + ['norm.weight', 'norm.bias', 'decoder_embed.weight', 'decoder_embed.bias',
                                   'decoder_pos_embed_learned', 'decoder_norm.weight', 'decoder_norm.bias',
                                   'mlm_layer.fc.weight', 'mlm_layer.fc.bias', 'mlm_layer.ln.weight',
                                   'mlm_layer.ln.bias', 'mlm_layer.bias']
    required += _block_keys('blocks.', depth) + _block_keys('decoder_blocks.', dec_depth)
    if depth == 0 or dec_depth == 0:
        raise CheckpointLayoutError(f'official pretrain checkpoint has {depth} encoder and {dec_depth} decoder '
                                    'blocks; both must be > 0')
    if with_tokenizer:
        required += _vqgan_required(sd, 'vqgan.')
    _require(required, sd, 'pretrain')
    out, unknown = OrderedDict(), []
    for k, v in sd.items():
        if k in LEGACY_KEYS or k.startswith(LEGACY_PREFIXES):
            continue
        if k.startswith('vqgan.'):
            if with_tokenizer:
                if not _VQGAN_RE.search(k[6:]):
                    unknown.append(k)
                    continue
                out[TOKENIZER_KEY_PREFIX + k[6:]] = v
        elif k.startswith('token_emb.') and k in _TOKEN_EMB or _BLOCK_RE.match(k) or k in ('norm.weight',
                                                                                           'norm.bias'):
            out['backbone.' + k] = v
        elif k == 'decoder_pos_embed_learned':
            out['neck.decoder_pos_embed'] = v
        elif k.startswith(('decoder_embed.', 'decoder_norm.')) or _DEC_BLOCK_RE.match(k):
            out['neck.' + k] = v
        elif k.startswith('mlm_layer.') and k[len('mlm_layer.'):] in ('fc.weight', 'fc.bias', 'ln.weight',
                                                                       'ln.bias', 'bias'):
            out['head.' + k[len('mlm_layer.'):]] = v
        else:
            unknown.append(k)
    _reject_unknown(unknown, 'pretrain')
    return out


def convert_classifier(sd: Dict[str, torch.Tensor], with_tokenizer: bool = True) -> 'OrderedDict[str, torch.Tensor]':
    """Official ``VisionTransformerMage`` (linear probe / fine-tune) → ``ImageClassifier`` state dict.

    The backbone owns the tokenizer (``backbone.tokenizer.*``); the linear-probe
    BatchNorm ``head.0`` becomes ``neck.bn`` (mmpretrain ``ClsBatchNormNeck``
    would be the other name) and the linear layer ``head.fc``.
    """
    depth = _num_blocks(sd, 'blocks.')
    if depth == 0:
        raise CheckpointLayoutError('official classifier checkpoint has no blocks.*')
    required = list(_TOKEN_EMB) + _block_keys('blocks.', depth)
    required += ['fc_norm.weight', 'fc_norm.bias'] if 'fc_norm.weight' in sd else ['norm.weight', 'norm.bias']
    required += ['head.1.weight', 'head.1.bias'] if 'head.1.weight' in sd else ['head.weight', 'head.bias']
    if with_tokenizer:
        required += _vqgan_required(sd, 'vqgan.')
    _require(required, sd, 'classifier')
    out, unknown = OrderedDict(), []
    for k, v in sd.items():
        if k in ('cls_token', 'pos_embed') or k.startswith('patch_embed.'):
            continue
        if k.startswith('vqgan.'):
            if with_tokenizer:
                if not _VQGAN_RE.search(k[6:]):
                    unknown.append(k)
                    continue
                out[TOKENIZER_KEY_PREFIX + k[6:]] = v
        elif k in _TOKEN_EMB or _BLOCK_RE.match(k) or k in ('norm.weight', 'norm.bias', 'fc_norm.weight',
                                                               'fc_norm.bias'):
            out['backbone.' + k] = v
        elif k in ('head.weight', 'head.bias'):
            out['head.fc.' + k.split('.')[-1]] = v
        elif k in ('head.1.weight', 'head.1.bias'):
            out['head.fc.' + k.split('.')[-1]] = v
        elif k.startswith('head.0.') and k.split('.')[-1] in ('running_mean', 'running_var', 'num_batches_tracked'):
            out['neck.bn.' + k.split('.')[-1]] = v
        else:
            unknown.append(k)
    _reject_unknown(unknown, 'classifier')
    return out


def convert_official(checkpoint, layout: str = 'auto', with_tokenizer: bool = True,
                     ignore_keys: Optional[str] = None) -> Tuple['OrderedDict[str, torch.Tensor]', str]:
    """Convert a loaded official checkpoint; returns ``(state_dict, layout)``."""
    try:
        sd = state_dict_from(checkpoint, 'official checkpoint')
    except CheckpointContentError as err:
        raise CheckpointLayoutError(str(err)) from None
    sd = _split(sd, ignore_keys)
    if layout == 'auto':
        layout = detect_layout(sd)
    if layout == 'pretrain':
        return convert_pretrain(sd, with_tokenizer), layout
    if layout == 'vqgan':
        unknown = [k for k in sd if not _VQGAN_RE.search(k)]
        _reject_unknown(unknown, 'tokenizer')
        return convert_vqgan(sd), layout
    if layout == 'classifier':
        return convert_classifier(sd, with_tokenizer), layout
    raise CheckpointLayoutError(f'unknown layout {layout!r}; choose auto, pretrain, vqgan or classifier')


# globals the official files may contain besides tensors: main_*.py store ``args``
OFFICIAL_SAFE_GLOBALS = [argparse.Namespace]


def load_official(path: str):
    """Load an official file with ``weights_only=True`` (+ ``argparse.Namespace``)."""
    return safe_load(path, map_location='cpu', extra_globals=OFFICIAL_SAFE_GLOBALS)
