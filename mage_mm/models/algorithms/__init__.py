from .mage import MAGE
from .mage_c import MAGEC

__all__ = ['MAGE', 'MAGEC']
