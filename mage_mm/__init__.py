"""mage_mm: MAGE as an OpenMMLab plugin.

Importing the package first applies the runtime compatibility shims
(:mod:`mage_mm.compat`), then registers the MAGE components in mmpretrain's
registries (configs use ``custom_imports=dict(imports=['mage_mm'])``). It imports
neither mmagic nor mmdet: their registrations live in leaf modules that configs
name in ``custom_imports``: :mod:`mage_mm.models.generators.mage_generator`,
:mod:`mage_mm.evaluation.metrics`, :mod:`mage_mm.models.algorithms.vqgan_trainer`
(mmagic) and :mod:`mage_mm.models.detection` (mmdet).
"""
from . import compat  # noqa: F401  must run before any OpenMMLab import
from . import models  # noqa: F401,E402  registers MAGEVQGAN, MAGEViT, ...
from . import datasets, engine, evaluation  # noqa: F401,E402  transforms, LARS, layer decay, kNN hook, VQ metric
from .version import __version__  # noqa: E402

__all__ = ['__version__']
