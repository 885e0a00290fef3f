"""Data transforms of the official MAGE recipes that mmpretrain lacks."""
import math
from typing import Tuple

import numpy as np
from mmcv.transforms.utils import cache_randomness
from mmpretrain.datasets.transforms import RandomResizedCrop
from mmpretrain.registry import TRANSFORMS


@TRANSFORMS.register_module()
class RandomResizedCropNoRetry(RandomResizedCrop):
    """RandomResizedCrop with a single draw (TF / BYOL style, ``util/crop.py``
    of the official linear probe).

    One area fraction and one log-uniform aspect ratio are drawn; the crop
    size is clamped to the image instead of retrying (torchvision and
    mmpretrain retry up to 10 times, then fall back to a centre crop). The
    arguments are those of mmpretrain's ``RandomResizedCrop``;
    ``max_attempts`` is ignored.
    """

    @cache_randomness
    def rand_crop_params(self, img: np.ndarray) -> Tuple[int, int, int, int]:
        h, w = img.shape[:2]
        target_area = np.random.uniform(*self.crop_ratio_range) * h * w
        log_ratio = (math.log(self.aspect_ratio_range[0]), math.log(self.aspect_ratio_range[1]))
        aspect_ratio = math.exp(np.random.uniform(*log_ratio))
        target_w = max(1, min(int(round(math.sqrt(target_area * aspect_ratio))), w))
        target_h = max(1, min(int(round(math.sqrt(target_area / aspect_ratio))), h))
        offset_h = np.random.randint(0, h - target_h + 1)
        offset_w = np.random.randint(0, w - target_w + 1)
        return offset_h, offset_w, target_h, target_w
