"""Layer-wise lr decay keyed on the backbone (registered as
``BackboneLayerDecayOptimWrapperConstructor``)."""
import functools
from typing import Callable, List, Optional

from mmpretrain.engine.optimizers import LearningRateDecayOptimWrapperConstructor
from mmpretrain.registry import OPTIM_WRAPPER_CONSTRUCTORS
from torch import nn


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class BackboneLayerDecayOptimWrapperConstructor(LearningRateDecayOptimWrapperConstructor):
    """mmpretrain's ``LearningRateDecayOptimWrapperConstructor`` for models
    that have no ``get_layer_depth`` of their own (mmdet detectors).

    The depth of a parameter comes from ``model.backbone.get_layer_depth(name,
    'backbone.')`` (e.g. :meth:`MAGEViT.get_layer_depth`: token embedding → 0,
    ``blocks.i`` → i + 1, everything else → last), so the neck and the heads
    train at the full learning rate. ``paramwise_cfg`` is the same as for the
    parent (``layer_decay_rate``, ``flat_decay_mult``, ``custom_keys`` with
    ``decay_mult`` ...). From an mmdet config use the scoped name
    ``'mmpretrain.BackboneLayerDecayOptimWrapperConstructor'``.
    """

    def add_params(self,
                   params: List[dict],
                   module: nn.Module,
                   prefix: str = '',
                   get_layer_depth: Optional[Callable] = None,
                   **kwargs) -> None:
        if prefix == '' and get_layer_depth is None and not hasattr(module, 'get_layer_depth'):
            backbone = getattr(module, 'backbone', None)
            if backbone is None or not hasattr(backbone, 'get_layer_depth'):
                raise NotImplementedError(f'{type(module).__name__} has no get_layer_depth and no backbone with '
                                          'one; layer-wise lr decay needs it')
            get_layer_depth = functools.partial(backbone.get_layer_depth, prefix='backbone.')
        super().add_params(params, module, prefix=prefix, get_layer_depth=get_layer_depth, **kwargs)
