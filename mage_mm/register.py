"""Register every mage_mm component that lives in mmpretrain's registries.

``import mage_mm`` registers nothing (it only defines ``__version__``), so that the pure modules
(:mod:`mage_mm.models.generators.decoding`, :mod:`mage_mm.models.utils.masking`,
:mod:`mage_mm.evaluation.fid`, :mod:`mage_mm.evaluation.inception`, :mod:`mage_mm.evaluation.knn`) can be
imported without mmpretrain's model zoo, which itself imports mmdet where it is installed
(``mmpretrain/models/utils/res_layer_extra_norm.py``). Configs import this module through
``custom_imports=dict(imports=['mage_mm.register', ...])``; Python users ``import mage_mm.register`` before
building a model from a config.

Components that register into other libraries live in leaf modules that configs name explicitly:
:mod:`mage_mm.models.generators.mage_generator` and :mod:`mage_mm.evaluation.metrics` (mmagic),
:mod:`mage_mm.models.algorithms.vqgan_trainer` (mmpretrain ``MODELS``, but imports mmagic) and
:mod:`mage_mm.models.detection` (mmdet).
"""
from . import datasets, engine, evaluation  # noqa: F401  transforms, hooks, optimizers, VQReconstructionMetric
from .models import algorithms, backbones, heads, necks, tokenizers  # noqa: F401  MAGE, MAGEC, MAGEViT, ...
