"""Evaluation without mmagic or mmdet: FID math and the TF-Inception network, kNN/linear-probe math, and
the tokenizer's :class:`VQReconstructionMetric` (mmpretrain ``METRICS``).

The mmagic metric :class:`LocalInceptionFID` lives in the leaf module :mod:`mage_mm.evaluation.metrics`
(imports mmagic); generation configs name it in ``custom_imports``.
"""
from .fid import (
    cached_reference_stats,
    compute_folder_features,
    compute_folder_stats,
    feature_statistics,
    fid_from_features,
    frechet_distance,
    list_images,
    load_reference_image,
    load_stats,
    reference_key,
    reference_protocol,
    save_stats,
)
from .inception import TFInceptionFeatures, default_inception_path, tf1_bilinear_resize
from .knn import knn_scores, linear_probe_scores, pool_features, topk_accuracy
from .reconstruction import VQReconstructionMetric, psnr

__all__ = [
    'TFInceptionFeatures', 'default_inception_path', 'tf1_bilinear_resize', 'feature_statistics', 'frechet_distance',
    'fid_from_features', 'compute_folder_features', 'list_images', 'load_reference_image', 'compute_folder_stats',
    'cached_reference_stats', 'reference_key', 'reference_protocol', 'save_stats', 'load_stats', 'knn_scores',
    'linear_probe_scores', 'pool_features', 'topk_accuracy', 'VQReconstructionMetric', 'psnr'
]
