"""MAGE generation and editing through mmagic.

Importing this module imports mmagic (slow, heavy) and registers
``MAGEGenerator`` in mmagic's ``MODELS``; ``import mage_mm`` does not. Generation
configs load it with ``custom_imports=dict(imports=['mage_mm',
'mage_mm.models.generators', 'mage_mm.evaluation'])``.
"""
import mage_mm  # noqa: F401  runtime shims (np.bool8, ...) before mmagic

from .decoding import (BatchSampler, DecodeResult, DecodingSampler, PerImageSampler, ReplaySampler,  # noqa: E402
                       build_sampler, clipped_mask_len, edit_mask, iterative_decode, mask_ratio, schedule_counts,
                       token_mask_from_pixels)
from .inference import (image_grid, init_generator, load_generator_checkpoint, load_mask, load_rgb01,  # noqa: E402
                        save_png, to_uint8)
from .mage_generator import EditResult, MAGEGenerator  # noqa: E402

__all__ = [
    'MAGEGenerator', 'EditResult', 'iterative_decode', 'DecodeResult', 'DecodingSampler', 'BatchSampler',
    'PerImageSampler', 'ReplaySampler', 'build_sampler', 'mask_ratio', 'clipped_mask_len', 'schedule_counts',
    'token_mask_from_pixels', 'edit_mask', 'init_generator', 'load_generator_checkpoint', 'to_uint8', 'save_png',
    'image_grid', 'load_rgb01', 'load_mask'
]
