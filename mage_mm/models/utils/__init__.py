from .masking import TruncatedGaussianRatio, mask_counts, random_token_masks
from .transformer import Attention, Block, DropPath, Mlp

__all__ = ['TruncatedGaussianRatio', 'mask_counts', 'random_token_masks', 'Attention', 'Block', 'DropPath', 'Mlp']
