"""ViTDet's simple feature pyramid (registered in mmdet's ``MODELS`` as
``SimpleFeaturePyramid``; import ``mage_mm.models.detection``)."""
import math
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule, build_norm_layer
from mmdet.registry import MODELS as MMDET_MODELS
from mmengine.model import BaseModule


@MMDET_MODELS.register_module()
class SimpleFeaturePyramid(BaseModule):
    """Multi-scale maps from one single-scale ViT map (Li et al. 2022,
    https://arxiv.org/abs/2203.16527, Fig. 2 / detectron2's
    ``SimpleFeaturePyramid``).

    Each scale factor ``s`` builds one level from the last backbone output:
    ``s = 2^k > 1``: k stride-2 transposed convolutions (halving the width,
    with norm + GELU between them); ``s = 1``: identity; ``s = 1/2^k``: k-fold
    2×2 max pooling. Every level then gets a 1×1 and a 3×3 conv (no bias, with
    norm). Extra levels up to ``num_outs`` are stride-2 subsamplings of the
    last one (detectron2's ``LastLevelMaxPool``).

    Args:
        in_channels (int): Width of the backbone map.
        out_channels (int): Width of every output level. Defaults to 256.
        scale_factors (Sequence[float]): Resolution of each level relative to
            the backbone map. Defaults to (4.0, 2.0, 1.0, 0.5) (strides 4–32
            from a stride-16 ViT).
        num_outs (int): Number of outputs (≥ the number of scale factors).
            Defaults to 5.
        norm_cfg (dict): Norm of the convs. Defaults to a channels-first
            LayerNorm with eps 1e-6 (``mmpretrain.LN2d``), as ViTDet.
        init_cfg (dict | list, optional): Initialisation config.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int = 256,
                 scale_factors: Sequence[float] = (4.0, 2.0, 1.0, 0.5),
                 num_outs: int = 5,
                 norm_cfg: Optional[dict] = None,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        norm_cfg = dict(type='mmpretrain.LN2d', eps=1e-6) if norm_cfg is None else norm_cfg
        if num_outs < len(scale_factors):
            raise ValueError(f'num_outs={num_outs} is smaller than the {len(scale_factors)} scale factors')
        self.scale_factors = tuple(float(s) for s in scale_factors)
        self.num_outs = num_outs
        self.stages = nn.ModuleList()
        self.lateral_convs = nn.ModuleList()
        self.output_convs = nn.ModuleList()
        for scale in self.scale_factors:
            stage, channels = self._resample(in_channels, scale, norm_cfg)
            self.stages.append(stage)
            self.lateral_convs.append(ConvModule(channels, out_channels, 1, bias=False, norm_cfg=norm_cfg,
                                                 act_cfg=None))
            self.output_convs.append(ConvModule(out_channels, out_channels, 3, padding=1, bias=False,
                                                norm_cfg=norm_cfg, act_cfg=None))

    @staticmethod
    def _resample(channels: int, scale: float, norm_cfg: dict) -> Tuple[nn.Module, int]:
        steps = math.log2(scale)
        if scale <= 0 or abs(steps - round(steps)) > 1e-6:
            raise ValueError(f'scale factors must be powers of 2, got {scale}')
        steps = int(round(steps))
        if steps == 0:
            return nn.Identity(), channels
        if steps < 0:
            return nn.MaxPool2d(kernel_size=2**-steps, stride=2**-steps), channels
        layers: List[nn.Module] = []
        for i in range(steps):
            if i > 0:
                layers += [build_norm_layer(norm_cfg, channels)[1], nn.GELU()]
            if channels % 2:
                raise ValueError(f'cannot halve {channels} channels for upsampling by {scale}')
            layers.append(nn.ConvTranspose2d(channels, channels // 2, kernel_size=2, stride=2))
            channels //= 2
        return nn.Sequential(*layers), channels

    def forward(self, inputs: Tuple[torch.Tensor, ...]) -> Tuple[torch.Tensor, ...]:
        """Backbone outputs (the last one is used) → ``num_outs`` maps, finest first."""
        x = inputs[-1] if isinstance(inputs, (tuple, list)) else inputs
        outs = [out(lat(stage(x))) for stage, lat, out in zip(self.stages, self.lateral_convs, self.output_convs)]
        while len(outs) < self.num_outs:
            outs.append(F.max_pool2d(outs[-1], kernel_size=1, stride=2))
        return tuple(outs)
