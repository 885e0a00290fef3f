"""The MAGE self-supervised algorithm (registered as ``MAGE``)."""
from typing import Dict, List, Optional, Tuple, Union

import torch
from mmpretrain.models.selfsup.base import BaseSelfSupervisor
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from ..utils.mage_network import MAGENetworkMixin


@MODELS.register_module()
class MAGE(MAGENetworkMixin, BaseSelfSupervisor):
    """MAGE: MAsked Generative Encoder (https://arxiv.org/abs/2211.09117).

    The frozen VQGAN (``backbone.tokenizer``, a :class:`MAGEVQGAN`) turns images
    in [0, 1] into token ids under ``no_grad``; :class:`MAGEViT` masks a
    variable fraction and encodes; :class:`MAGEPretrainDecoder` reconstructs
    the full sequence; :class:`MAGEPretrainHead` predicts the masked ids with
    its output layer tied to the backbone's embedding table.

    Every trainable parameter receives a gradient each step (the official
    model's unused legacy tensors are not created), so DDP needs no
    ``find_unused_parameters``.

    The tokenizer is part of the backbone config (``backbone=dict(type='MAGEViT',
    ..., tokenizer=dict(type='MAGEVQGAN', ...))``), as in the linear-probe,
    fine-tuning and detection models, so its weights sit under the same
    ``backbone.tokenizer.`` prefix in every checkpoint
    (:class:`~mage_mm.models.utils.mage_network.MAGENetworkMixin`).

    Args:
        backbone (dict): ``MAGEViT`` config with its ``tokenizer``.
        neck (dict): ``MAGEPretrainDecoder`` config.
        head (dict): ``MAGEPretrainHead`` config.
        pretrained (str, optional): Checkpoint loaded at init. Defaults to None.
        data_preprocessor (dict, optional): Defaults to ``SelfSupDataPreprocessor``
            with mean 0 / std 255 (images in [0, 1], RGB), the official input.
        init_cfg (dict | list, optional): Initialisation config.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 pretrained: Optional[str] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='SelfSupDataPreprocessor', mean=[0., 0., 0.], std=[255., 255., 255.],
                                     to_rgb=True)
        super().__init__(backbone=backbone, neck=neck, head=head, pretrained=pretrained,
                         data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self._check_compatible()

    def extract_feat(self, inputs: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Plain (unmasked) backbone features of images."""
        return self.backbone(self.tokenize(inputs))

    def loss(self, inputs: Union[torch.Tensor, List[torch.Tensor]], data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        """Variable-ratio masked token modelling loss."""
        if isinstance(inputs, (list, tuple)):
            inputs = inputs[0]
        if inputs.is_floating_point():
            ids = self.tokenize(inputs)
        else:  # pre-tokenised batch (TokenCacheDataset): no tokenizer pass; its identity and the grid are checked
            from ..utils.token_ids import check_cached_ids
            ids = check_cached_ids(inputs, data_samples, self.backbone.tokenizer, self.backbone.num_tokens)
        out = self.backbone(ids, mask=True)
        feats = self.neck(out.latent, out.token_drop_mask, out.token_all_mask)
        loss = self.head.loss(feats, ids, out.token_all_mask, self.backbone.word_embeddings)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f'MAGE loss is {loss.item()} (masked tokens: {int(out.token_all_mask.sum())}); '
                'check the learning rate, the input range ([0, 1] expected) and AMP settings '
                '(tools/train.py adds the iteration and the last checkpoint whose weights passed the check)')
        return dict(loss=loss)
