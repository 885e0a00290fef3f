"""Leaf module: registers :class:`MAGECondGenerator` in mmagic's ``MODELS`` (importing it imports mmagic).

The class lives in :mod:`mage_mm.models.generators.cond_generator` (no mmagic import); class-conditional
generation configs name this module in ``custom_imports``. Importing it also registers ``MAGEGenerator``.
"""
from mmagic.registry import MODELS as MMAGIC_MODELS

from . import mage_generator  # noqa: F401  MAGEGenerator in mmagic's MODELS too, as before the split
from .cond_generator import MAGECondGenerator

MMAGIC_MODELS.register_module(module=MAGECondGenerator)

__all__ = ['MAGECondGenerator']
