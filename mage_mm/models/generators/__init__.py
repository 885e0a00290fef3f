"""MAGE iterative decoding (plain torch: no mmagic, no mmdet).

The generator classes live in :mod:`mage_mm.models.generators.generator` (:class:`MAGEGenerator`) and
:mod:`mage_mm.models.generators.cond_generator` (:class:`MAGECondGenerator`), which import no mmagic; the leaf
modules :mod:`mage_mm.models.generators.mage_generator` / ``mage_cond_generator`` import mmagic and register them
in mmagic's ``MODELS``; generation configs name the leaves in ``custom_imports``.
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
