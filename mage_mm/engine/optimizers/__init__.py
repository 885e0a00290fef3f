from .autocast_optim_wrapper import CPUAutocastOptimWrapper
from .lars import MAGELARS
from .layer_decay import BackboneLayerDecayOptimWrapperConstructor

__all__ = ['CPUAutocastOptimWrapper', 'MAGELARS', 'BackboneLayerDecayOptimWrapperConstructor']
