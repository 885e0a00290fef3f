from .vqgan import MAGEVQGAN

__all__ = ['MAGEVQGAN']
