"""mmengine-side additions registered in mmpretrain's registries: the official
linear-probe LARS, backbone-keyed layer-wise lr decay and the kNN eval hook."""
from .hooks import KNNEvalHook, MAGECheckpointHook, NonFiniteTrainingError
from .optimizers import MAGELARS, BackboneLayerDecayOptimWrapperConstructor

__all__ = ['KNNEvalHook', 'MAGECheckpointHook', 'NonFiniteTrainingError', 'MAGELARS',
           'BackboneLayerDecayOptimWrapperConstructor']
