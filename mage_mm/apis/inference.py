"""Build a :class:`MAGEGenerator` from a config and a checkpoint (the generation tools' entry point)."""
import os.path as osp
from typing import List, Optional, Union

import torch
from mmengine.config import Config

from ..utils.checkpoint import check_state_dict_fits, read_state_dict, require_mage_layout


def load_generator_checkpoint(model: torch.nn.Module, path: str) -> None:
    """Load a MAGE checkpoint strictly, with an error that names what does not fit.

    Raises:
        CheckpointContentError: (a ``ValueError``) not a mage_mm MAGE checkpoint,
            or keys / shapes that differ from the model's (named in the message).
    """
    sd, _ = read_state_dict(path)
    require_mage_layout(sd, path)
    check_state_dict_fits(model.state_dict(), sd, path, "the config's MAGEGenerator")
    model.load_state_dict(sd, strict=True)


def init_generator(config: Union[str, Config], checkpoint: Optional[str] = None, device: str = 'cpu',
                   cfg_options: Optional[dict] = None, precision: Optional[str] = None,
                   tokenizer_precision: Optional[str] = None, compile: Optional[bool] = None,
                   attention_precision: Optional[str] = None):
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
        compile (bool, optional): ``torch.compile`` the network (backbone,
            neck, head); defaults to the config's top-level ``compile`` (False).
        attention_precision (str, optional): ``'fp32'`` (official) or ``'follow'``
            (attention in ``precision`` too, a fast path); defaults to the
            config's top-level ``attention_precision`` (fp32).
    """
    from mmagic.registry import MODELS

    import mage_mm.models.generators.mage_cond_generator  # noqa: F401  registers MAGECondGenerator in mmagic
    import mage_mm.models.generators.mage_generator  # noqa: F401  registers MAGEGenerator in mmagic
    import mage_mm.register  # noqa: F401  the mmpretrain parts it builds (MAGEViT, ...)
    if checkpoint is not None and not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {checkpoint}')
    cfg = Config.fromfile(config) if isinstance(config, str) else config
    if cfg_options:
        from ..utils.cfg_options import check_cfg_options
        cfg.merge_from_dict(check_cfg_options(cfg_options))  # keys that would inject code into a dumped config
    from ..engine.precision import apply_precision
    apply_precision(cfg, precision, tokenizer_precision, device=device, training=False,
                    attention_precision=attention_precision)
    model_cfg = dict(cfg.model)
    if model_cfg.get('type') not in ('MAGEGenerator', 'MAGECondGenerator'):
        raise ValueError(f"config model type is {model_cfg.get('type')!r}; use a configs/generation/ config "
                         '(type=MAGEGenerator, or MAGECondGenerator for a class-conditional MAGE)')
    model_cfg['_scope_'] = 'mmagic'
    model = MODELS.build(model_cfg)
    if checkpoint is not None:
        load_generator_checkpoint(model, checkpoint)
    model.cfg = cfg
    model = model.to(device).eval()
    if cfg.get('compile', False) if compile is None else compile:
        from ..utils.precision import compile_network
        compile_network(model)
    return model


__all__: List[str] = ['init_generator', 'load_generator_checkpoint']
