"""mage_mm: MAGE as an OpenMMLab plugin.

``import mage_mm`` only defines ``__version__``: it registers nothing and changes no other library.
Configs register the components with ``custom_imports=dict(imports=['mage_mm.register', ...])``
(:mod:`mage_mm.register`: everything that lives in mmpretrain's registries) plus the leaf modules
that import mmagic or mmdet: :mod:`mage_mm.models.generators.mage_generator`,
:mod:`mage_mm.evaluation.metrics`, :mod:`mage_mm.models.algorithms.vqgan_trainer` (mmagic) and
:mod:`mage_mm.models.detection` (mmdet).
The compatibility shims are applied only by importing :mod:`mage_mm.compat`
(configs list it in ``custom_imports``; mage_mm's tools import it).
"""
from .version import __version__

__all__ = ['__version__']
