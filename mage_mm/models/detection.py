"""MAGE components for mmdet. Importing this module imports mmdet and registers
``MAGEViTDet`` and ``SimpleFeaturePyramid`` in mmdet's ``MODELS``; detection
configs do it through ``custom_imports=dict(imports=['mage_mm',
'mage_mm.models.detection'])``. (``import mage_mm`` alone does not.)
The layer-wise lr decay constructor for detectors,
``mmpretrain.BackboneLayerDecayOptimWrapperConstructor``, comes with ``mage_mm``.
"""
from .backbones.mage_vitdet import MAGEViTDet
from .necks.simple_fpn import SimpleFeaturePyramid

__all__ = ['MAGEViTDet', 'SimpleFeaturePyramid']
