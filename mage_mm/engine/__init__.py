"""mmengine-side additions registered in mmpretrain's registries: the official
linear-probe LARS, backbone-keyed layer-wise lr decay and the kNN eval hook."""
from .hooks import KNNEvalHook, MAGECheckpointHook, NonFiniteTrainingError
from .optimizers import (
    MAGELARS,
    BackboneLayerDecayOptimWrapperConstructor,
    CPUAutocastOptimWrapper,  # noqa: F401  registers in mmengine's OPTIM_WRAPPERS
)
from .precision import AutocastTestLoop, AutocastValLoop, apply_precision, precision_context  # noqa: F401

__all__ = ['KNNEvalHook', 'MAGECheckpointHook', 'NonFiniteTrainingError', 'MAGELARS',
           'BackboneLayerDecayOptimWrapperConstructor']
