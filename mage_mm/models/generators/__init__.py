"""MAGE iterative decoding (plain torch: no mmagic, no mmdet).

The mmagic model :class:`MAGEGenerator` lives in the leaf module :mod:`mage_mm.models.generators.mage_generator`
(importing it imports mmagic and registers the class in mmagic's ``MODELS``); generation configs name it in
``custom_imports``.
"""
from .decoding import (
    BatchSampler,
    DecodeResult,
    DecodingOptions,
    DecodingSampler,
    PerImageSampler,
    ReplaySampler,
    build_sampler,
    clipped_mask_len,
    edit_mask,
    iterative_decode,
    mask_ratio,
    schedule_counts,
    token_mask_from_pixels,
)

__all__ = [
    'DecodingOptions', 'iterative_decode', 'DecodeResult', 'DecodingSampler', 'BatchSampler', 'PerImageSampler',
    'ReplaySampler', 'build_sampler', 'mask_ratio', 'clipped_mask_len', 'schedule_counts', 'token_mask_from_pixels',
    'edit_mask'
]
