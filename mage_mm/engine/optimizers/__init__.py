from .lars import MAGELARS
from .layer_decay import BackboneLayerDecayOptimWrapperConstructor

__all__ = ['MAGELARS', 'BackboneLayerDecayOptimWrapperConstructor']
