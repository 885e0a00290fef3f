from .image_check import BadImageError, CheckedImageDataset, check_image_file, wrap_datasets
from .photos import imagenet_label, packaged_photo_paths, random_crops, write_image_folder
from .token_cache import TokenCacheDataset, TokenCacheError
from .transforms import RandomResizedCropNoRetry

__all__ = ['BadImageError', 'CheckedImageDataset', 'check_image_file', 'wrap_datasets', 'packaged_photo_paths',
           'imagenet_label', 'random_crops', 'write_image_folder', 'RandomResizedCropNoRetry', 'TokenCacheDataset',
           'TokenCacheError']
