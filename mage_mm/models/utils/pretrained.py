"""Strict ``init_cfg=dict(type='Pretrained', ...)`` for the MAGE modules.

mmengine's ``PretrainedInit`` loads with ``strict=False``: a checkpoint of
another model, or one whose keys or shapes differ in part, leaves random weights
behind a log warning, and a run trains for days on random tokens. The official
MAGE code loads the tokenizer strictly and asserts the exact missing-key set
of its classifiers.

Modules that mix in :class:`StrictPretrainedMixin` (``MAGEVQGAN``, ``MAGEViT``,
``MAGEViTDet``) take over their own ``Pretrained`` init_cfg: after their
sub-modules are initialised (as mmengine orders it, so nothing overwrites the
loaded weights) they load the checkpoint with :func:`load_pretrained`, which
requires every key of the module to come from the checkpoint and every
checkpoint key (under ``prefix``) to be used, with equal shapes. The only keys
allowed to be missing are those of sub-modules that have their own
``Pretrained`` init_cfg (the tokenizer inside a classifier backbone loads from
``target_generator.``), plus any the config lists. The error names the
checkpoint, the prefix and the first offending keys.

Extra ``init_cfg`` keys (besides mmengine's ``checkpoint``, ``prefix``,
``map_location``):

* ``expected_missing_keys`` (list[str]): ``fnmatch`` patterns of module keys
  that may be absent from the checkpoint;
* ``expected_unexpected_keys`` (list[str]): patterns of checkpoint keys that
  may be left unused;
* ``strict`` (bool): False gives mmengine's behaviour back (warnings only).
"""
from typing import Dict, List, Optional, Sequence

import torch.nn as nn
from mmengine.logging import print_log

from ...utils.checkpoint import compare_state_dicts, first_keys, safe_load, state_dict_from

PRETRAINED_TYPES = ('Pretrained', 'MAGEPretrained')


class PretrainedMismatchError(ValueError):
    """A pretrained checkpoint does not fit the module it initialises."""


def read_state_dict(checkpoint: str, map_location='cpu') -> Dict[str, object]:
    """The state dict of a checkpoint file or URL (Runner checkpoint, ``{'model': ...}`` or a bare state dict).

    Raises:
        CheckpointContentError: No state dict in it (see :func:`mage_mm.utils.checkpoint.state_dict_from`).
    """
    if '://' not in str(checkpoint) or str(checkpoint).startswith('file://'):
        ckpt = safe_load(  # weights_only=True: nothing we load runs code
            str(checkpoint).replace('file://', '', 1), map_location=map_location)
    else:
        from mmengine.runner.checkpoint import _load_checkpoint
        ckpt = _load_checkpoint(checkpoint, map_location=map_location)
    return state_dict_from(ckpt, source=f'pretrained checkpoint {checkpoint}')


def load_pretrained(module: nn.Module,
                    checkpoint: str,
                    prefix: Optional[str] = None,
                    map_location='cpu',
                    expected_missing_keys: Sequence[str] = (),
                    expected_unexpected_keys: Sequence[str] = (),
                    strict: bool = True) -> None:
    """Load ``checkpoint`` (the keys under ``prefix``) into ``module``; refuse anything that does not fit.

    Args:
        module (nn.Module): The module to initialise.
        checkpoint (str): A checkpoint path (or any scheme mmengine reads).
        prefix (str, optional): Keep the keys under this prefix, stripped
            (``'backbone.'``, ``'target_generator.'``). Defaults to None (all keys).
        map_location: Defaults to ``'cpu'``.
        expected_missing_keys (Sequence[str]): ``fnmatch`` patterns of module keys
            that may be absent. Defaults to ().
        expected_unexpected_keys (Sequence[str]): Patterns of checkpoint keys that
            may go unused. Defaults to ().
        strict (bool): Raise on a mismatch. Defaults to True.

    Raises:
        PretrainedMismatchError: Naming the checkpoint, the prefix and the first
            missing, unexpected and mis-shaped keys.
    """
    state = read_state_dict(checkpoint, map_location)
    where = f'pretrained checkpoint {checkpoint} (prefix {prefix!r})'
    name = type(module).__name__
    if prefix:
        if not prefix.endswith('.'):
            prefix += '.'
        selected = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if not selected:
            present = sorted({k.split('.')[0] + '.' for k in state})
            raise PretrainedMismatchError(f'{where}: no key starts with {prefix!r}; the checkpoint\'s keys start '
                                          f'with {first_keys(present)}')
        state = selected
    own = module.state_dict()
    fit = compare_state_dicts(own, state, expected_missing_keys, expected_unexpected_keys)
    if not fit.fits:
        problems = fit.problems(name)
        hint = ''
        if not fit.num_shared:
            present = sorted({k.split('.')[0] + '.' for k in state})
            hint = (f' No key matches: this is a checkpoint of another model or the wrong prefix (keys under the '
                    f'prefix start with {first_keys(present, 6)}).')
        msg = f'{where} does not fit {name}: ' + '; '.join(problems) + '.' + hint
        if strict:
            raise PretrainedMismatchError(msg + ' (init_cfg strict=False loads what matches, as mmengine does.)')
        print_log(msg, logger='current', level=30)
    usable = {k: v for k, v in state.items() if k in own and tuple(getattr(v, 'shape', ())) == tuple(own[k].shape)}
    module.load_state_dict(usable, strict=False)
    print_log(f'{name}: loaded {len(usable)} tensors from {where} (strict={strict})', logger='current')


def _own_pretrained_children(module: nn.Module) -> List[str]:
    """Names of sub-modules that load their own Pretrained weights (their keys may be missing here)."""
    out = []
    for child_name, child in module.named_modules():
        if not child_name:
            continue
        cfgs = getattr(child, 'init_cfg', None)
        cfgs = [cfgs] if isinstance(cfgs, dict) else list(cfgs or [])
        if any(isinstance(c, dict) and c.get('type') in PRETRAINED_TYPES for c in cfgs):
            out.append(child_name)
    return out


class StrictPretrainedMixin:
    """Put first in the bases of a ``BaseModule``: its ``Pretrained`` init_cfg is loaded strictly."""

    def pretrained_key_rules(self):
        """``(expected_missing_keys, expected_unexpected_keys)`` patterns this module always allows.

        The official classifiers assert that exactly their new layers are missing; a module overrides this
        to name them. Defaults to none.
        """
        return [], []

    def init_weights(self) -> None:
        cfgs = self.init_cfg
        cfgs = [cfgs] if isinstance(cfgs, dict) else list(cfgs or [])
        pretrained = [c for c in cfgs if isinstance(c, dict) and c.get('type') in PRETRAINED_TYPES]
        if not pretrained or getattr(self, '_is_init', False):
            return super().init_weights()
        saved = self.init_cfg
        rest = [c for c in cfgs if c not in pretrained]
        # the other init_cfgs and the sub-modules first, the checkpoint last (mmengine's order for Pretrained)
        self.init_cfg = rest or None
        try:
            super().init_weights()
        finally:
            self.init_cfg = saved
        children = _own_pretrained_children(self)
        rule_missing, rule_unexpected = self.pretrained_key_rules()
        for cfg in pretrained:
            cfg = dict(cfg)
            cfg.pop('type')
            missing = list(cfg.pop('expected_missing_keys', ())) + list(rule_missing) + [f'{c}.*' for c in children]
            unexpected = list(cfg.pop('expected_unexpected_keys', ())) + list(rule_unexpected)
            load_pretrained(self, expected_missing_keys=missing, expected_unexpected_keys=unexpected, **cfg)
