"""Losses for tokenizer training (kept out of ``import mage_mm``: imported by the modules that use them)."""
from .lpips import LPIPS, lpips_weights_path

__all__ = ['LPIPS', 'lpips_weights_path']
