"""Build a :class:`MAGEGenerator` from a config and a checkpoint (the generation tools' entry point).

No mmagic: the generator classes are built straight from :mod:`mage_mm.models.generators.generator` /
``cond_generator`` (which import no mmagic), not through mmagic's registry, so ``tools/generate.py``,
``tools/edit.py`` and a Python user pay neither mmagic's nor diffusers' import weight (measured: the generation
process held 1,255 MB after its imports with them, README "Performance"). mmagic is imported later only if
mmagic's interface of the model is used (``forward``, ``data_preprocessor``).
"""
import os.path as osp
from typing import Dict, List, Optional, Union

import torch
from mmengine.config import Config

from ..utils.checkpoint import check_state_dict_fits, read_state_dict, require_mage_layout

#: generation configs' ``custom_imports`` that import mmagic only to register in its registries (the generator
#: classes, the FID metric): :func:`load_generation_config` skips them, :func:`init_generator` needs none of them
MMAGIC_LEAVES = ('mage_mm.models.generators.mage_generator', 'mage_mm.models.generators.mage_cond_generator',
                 'mage_mm.evaluation.metrics')


def load_generation_config(path: str) -> Config:
    """Read a generation config and import its ``custom_imports`` except the mmagic leaves (``MMAGIC_LEAVES``).

    ``Config.fromfile`` would import every module the config names, and the generation configs name the
    leaves that register the generators and the FID metric in mmagic (for mmagic's CLIs and ``Inferencers``);
    importing them imports mmagic and diffusers, which :func:`init_generator` does not use.

    Args:
        path (str): The config file.

    Returns:
        Config: The config, its other custom imports done (``mage_mm.compat``, ``mage_mm.register``, a
        user's own modules).
    """
    from mmengine.utils import import_modules_from_strings
    cfg = Config.fromfile(path, import_custom_modules=False)
    custom = cfg.get('custom_imports')
    if custom:
        imports = custom.get('imports', [])
        imports = [imports] if isinstance(imports, str) else imports
        import_modules_from_strings([m for m in imports if m not in MMAGIC_LEAVES],
                                    allow_failed_imports=custom.get('allow_failed_imports', False))
    return cfg


def generator_types() -> Dict[str, type]:
    """The config ``type`` names :func:`init_generator` builds, with their classes (imports no mmagic)."""
    from ..models.generators.cond_generator import MAGECondGenerator
    from ..models.generators.generator import MAGEGenerator
    return {'MAGEGenerator': MAGEGenerator, 'MAGECondGenerator': MAGECondGenerator}


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
    """Build the config's ``MAGEGenerator`` / ``MAGECondGenerator``, load ``checkpoint`` strictly, eval mode.

    The class is looked up among mage_mm's generators (:func:`generator_types`), not in mmagic's registry, so
    building imports no mmagic (the classes are the ones the leaf modules register in mmagic's ``MODELS``).

    Args:
        config (str | Config): A generation config (``configs/generation/``); a path is read with
            :func:`load_generation_config` (no mmagic import).
        checkpoint (str, optional): A MAGE checkpoint (mage_mm pretraining or
            converted official). None keeps the initial weights.
        device (str): Defaults to ``'cpu'``.
        cfg_options (dict, optional): Overrides merged into the config.
        precision (str, optional): ``'fp32'``/``'bf16'``/``'fp16'``/``'auto'``; defaults to
            the config's top-level ``precision`` (else ``model.precision``, fp32).
        tokenizer_precision (str, optional): ``'fp32'`` (default) or
            ``'follow'`` (encode images to edit in ``precision`` too).
        compile (bool, optional): ``torch.compile`` the network (backbone,
            neck, head); defaults to the config's top-level ``compile`` (False).
        attention_precision (str, optional): ``'fp32'`` (official) or ``'follow'``
            (attention in ``precision`` too, a fast path); defaults to the
            config's top-level ``attention_precision`` (fp32).
    """
    import mage_mm.register  # noqa: F401  the mmpretrain parts it builds (MAGEViT, ...)
    if checkpoint is not None and not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {checkpoint}')
    cfg = load_generation_config(config) if isinstance(config, str) else config
    if cfg_options:
        from ..utils.cfg_options import check_cfg_options
        cfg.merge_from_dict(check_cfg_options(cfg_options))  # keys that would inject code into a dumped config
    from ..engine.precision import apply_precision
    apply_precision(cfg, precision, tokenizer_precision, device=device, training=False,
                    attention_precision=attention_precision)
    model_cfg = dict(cfg.model)
    generator_cls = generator_types().get(model_cfg.pop('type', None))
    if generator_cls is None:
        raise ValueError(f"config model type is {cfg.model.get('type')!r}; use a configs/generation/ config "
                         '(type=MAGEGenerator, or MAGECondGenerator for a class-conditional MAGE)')
    model_cfg.pop('_scope_', None)  # the parts name their own registries (mmpretrain, mmagic when built)
    model = generator_cls(**model_cfg)
    if checkpoint is not None:
        load_generator_checkpoint(model, checkpoint)
    model.cfg = cfg
    model = model.to(device).eval()
    if cfg.get('compile', False) if compile is None else compile:
        from ..utils.precision import compile_network
        compile_network(model)
    return model


__all__: List[str] = ['init_generator', 'load_generator_checkpoint', 'generator_types', 'load_generation_config',
                      'MMAGIC_LEAVES']
