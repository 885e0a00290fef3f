"""MAGE components for mmpretrain (and, in leaf modules, for mmagic and mmdet).

This package ``__init__`` imports nothing, so that the pure modules below it (``utils.masking``,
``utils.transformer``, ``generators.decoding``) load without mmpretrain's model zoo (which imports mmdet).
Import classes from their sub-package (``from mage_mm.models.algorithms import MAGE``); ``import
mage_mm.register`` registers all of them in mmpretrain's ``MODELS``.
"""
