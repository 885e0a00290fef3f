"""User-facing entry points: build a generator from a config, image files in and out, tokenizer checkpoints.

:func:`init_generator` imports no mmagic (only mmagic's interface of the built model does, when used).
"""
from .image_io import image_grid, load_mask, load_rgb01, save_png, to_uint8
from .inference import init_generator, load_generator_checkpoint
from .tokenizer import load_tokenizer, read_tokenizer, resolve_checkpoint, tokenizer_arch, tokenizer_state_dict

__all__ = [
    'init_generator', 'load_generator_checkpoint', 'to_uint8', 'save_png', 'image_grid', 'load_rgb01', 'load_mask',
    'resolve_checkpoint', 'tokenizer_state_dict', 'tokenizer_arch', 'read_tokenizer', 'load_tokenizer'
]
