"""Build a :class:`MAGEGenerator` from a config and a checkpoint (the generation tools' entry point)."""
import os.path as osp
from typing import Dict, List, Optional, Union

import torch
from mmengine.config import Config

from ..utils.checkpoint import safe_load


def _state_dict(checkpoint: dict, path: str) -> Dict[str, torch.Tensor]:
    sd = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ValueError(f'{path} is not a state dict nor an mmengine checkpoint with a "state_dict" entry')
    sd = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in sd.items()}
    if not any(k.startswith('backbone.') for k in sd):
        hint = (' It looks like an official MAGE checkpoint: convert it with '
                'tools/model_converters/mage_to_mmpretrain.py first.') if any(
                    k.startswith(('blocks.', 'vqgan.', 'token_emb.')) for k in sd) else ''
        raise ValueError(f'{path} has no backbone.* weights; expected a MAGE checkpoint '
                         f'(backbone./neck./head./target_generator.).{hint}')
    return sd


def load_generator_checkpoint(model: torch.nn.Module, path: str) -> None:
    """Load a MAGE checkpoint strictly, with an error that names what does not fit."""
    sd = _state_dict(safe_load(path, map_location='cpu'), path)
    own = model.state_dict()
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    mismatched = [f'{k}: checkpoint {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}'
                  for k in sorted(set(sd) & set(own)) if sd[k].shape != own[k].shape]
    if missing or unexpected or mismatched:
        parts = []
        if mismatched:
            tok = [m for m in mismatched if m.startswith('target_generator.')]
            what = 'tokenizer/model size mismatch' if tok else 'size mismatch'
            parts.append(f'{what} ({len(mismatched)}): ' + '; '.join(mismatched[:4]))
        if missing:
            parts.append(f'missing in checkpoint ({len(missing)}): {", ".join(missing[:6])}')
        if unexpected:
            parts.append(f'not in the model ({len(unexpected)}): {", ".join(unexpected[:6])}')
        raise ValueError(f'checkpoint {path} does not fit the config\'s MAGEGenerator: ' + ' | '.join(parts))
    model.load_state_dict(sd, strict=True)


def init_generator(config: Union[str, Config], checkpoint: Optional[str] = None, device: str = 'cpu',
                   cfg_options: Optional[dict] = None, precision: Optional[str] = None,
                   tokenizer_precision: Optional[str] = None):
    """Build the config's ``MAGEGenerator`` (mmagic registry), load ``checkpoint`` strictly, eval mode.

    Args:
        config (str | Config): A generation config (``configs/generation/``).
        checkpoint (str, optional): A MAGE checkpoint (mage_mm pretraining or
            converted official). None keeps the initial weights.
        device (str): Defaults to ``'cpu'``.
        cfg_options (dict, optional): Overrides merged into the config.
        precision (str, optional): ``'fp32'``/``'bf16'``/``'fp16'``; defaults to
            the config's top-level ``precision`` (else ``model.precision``, fp32).
        tokenizer_precision (str, optional): ``'fp32'`` (default) or
            ``'follow'`` (encode images to edit in ``precision`` too).
    """
    import mage_mm.models.generators.mage_generator  # noqa: F401  registers MAGEGenerator in mmagic
    import mage_mm.register  # noqa: F401  the mmpretrain parts it builds (MAGEViT, ...)
    from mmagic.registry import MODELS
    if checkpoint is not None and not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {checkpoint}')
    cfg = Config.fromfile(config) if isinstance(config, str) else config
    if cfg_options:
        from ..utils.cfg_options import check_cfg_options
        cfg.merge_from_dict(check_cfg_options(cfg_options))  # keys that would inject code into a dumped config
    from ..engine.precision import apply_precision
    apply_precision(cfg, precision, tokenizer_precision, device=device, training=False)
    model_cfg = dict(cfg.model)
    if model_cfg.get('type') != 'MAGEGenerator':
        raise ValueError(f"config model type is {model_cfg.get('type')!r}; use a configs/generation/ config "
                         '(type=MAGEGenerator)')
    model_cfg['_scope_'] = 'mmagic'
    model = MODELS.build(model_cfg)
    if checkpoint is not None:
        load_generator_checkpoint(model, checkpoint)
    model.cfg = cfg
    return model.to(device).eval()


__all__: List[str] = ['init_generator', 'load_generator_checkpoint']
