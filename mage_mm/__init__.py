"""mage_mm: MAGE as an OpenMMLab plugin.

Importing the package first applies the runtime compatibility shims
(:mod:`mage_mm.compat`), then registers the MAGE components in mmpretrain's
``MODELS`` registry (configs use ``custom_imports=dict(imports=['mage_mm'])``).
"""
from . import compat  # noqa: F401  must run before any OpenMMLab import
from . import models  # noqa: F401,E402  registers MAGEVQGAN, MAGEViT, ...
from . import datasets, engine  # noqa: F401,E402  transforms, LARS, layer decay, kNN hook
from .version import __version__  # noqa: E402

__all__ = ['__version__']
