from .mage import MAGE

__all__ = ['MAGE']
