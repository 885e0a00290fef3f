"""Checkpoint converters between the official MAGE files and mage_mm layouts (used by tools/model_converters/)."""
from .official import (
    CheckpointLayoutError,
    convert_classifier,
    convert_official,
    convert_pretrain,
    convert_vqgan,
    detect_layout,
    load_official,
)

__all__ = [
    'CheckpointLayoutError', 'convert_official', 'convert_pretrain', 'convert_classifier', 'convert_vqgan',
    'detect_layout', 'load_official'
]
