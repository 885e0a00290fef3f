"""Offline FID for MAGE generation.

``inception`` and ``fid`` are plain torch/numpy; importing this package also
imports mmagic and registers :class:`LocalInceptionFID` in mmagic's
``METRICS`` (generation configs list it in ``custom_imports``).
"""
import mage_mm  # noqa: F401  runtime shims before mmagic

from .fid import (cached_reference_stats, compute_folder_features, compute_folder_stats,  # noqa: E402
                  feature_statistics, fid_from_features, frechet_distance, list_images, load_reference_image,
                  load_stats, reference_key, reference_protocol, save_stats)
from .inception import TFInceptionFeatures, default_inception_path, tf1_bilinear_resize  # noqa: E402
from .metrics import LocalInceptionFID  # noqa: E402

__all__ = [
    'LocalInceptionFID', 'TFInceptionFeatures', 'default_inception_path', 'tf1_bilinear_resize',
    'feature_statistics', 'frechet_distance', 'fid_from_features', 'compute_folder_features', 'list_images',
    'load_reference_image', 'compute_folder_stats', 'cached_reference_stats', 'reference_key',
    'reference_protocol', 'save_stats', 'load_stats'
]
