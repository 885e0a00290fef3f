"""Leaf module: registers :class:`MAGEGenerator` in mmagic's ``MODELS`` (importing it imports mmagic).

The class lives in :mod:`mage_mm.models.generators.generator`, which imports no mmagic, so that generating
through :func:`mage_mm.apis.init_generator` and the tools does not pay mmagic's import weight. Generation
configs name this module in ``custom_imports`` so that mmagic's CLIs, Runners and ``Inferencers`` find the
``MAGEGenerator`` type.
"""
from mmagic.registry import MODELS as MMAGIC_MODELS

from .generator import EditResult, MAGEGenerator

MMAGIC_MODELS.register_module(module=MAGEGenerator)

__all__ = ['MAGEGenerator', 'EditResult']
