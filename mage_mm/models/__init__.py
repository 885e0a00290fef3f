"""MAGE components registered in mmpretrain's ``MODELS``."""
from .algorithms import MAGE, MAGEC
from .backbones import MAGEViT
from .heads import MAGEPretrainHead
from .necks import MAGEPretrainDecoder
from .tokenizers import MAGEVQGAN

__all__ = ['MAGE', 'MAGEC', 'MAGEViT', 'MAGEPretrainDecoder', 'MAGEPretrainHead', 'MAGEVQGAN']
