"""The MAGE self-supervised algorithm (registered as ``MAGE``)."""
from typing import Dict, List, Optional, Tuple, Union

import torch
from mmpretrain.models.selfsup.base import BaseSelfSupervisor
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample


@MODELS.register_module()
class MAGE(BaseSelfSupervisor):
    """MAGE: MAsked Generative Encoder (https://arxiv.org/abs/2211.09117).

    The frozen VQGAN (``target_generator``, a :class:`MAGEVQGAN`) turns images
    in [0, 1] into token ids under ``no_grad``; :class:`MAGEViT` masks a
    variable fraction and encodes; :class:`MAGEPretrainDecoder` reconstructs
    the full sequence; :class:`MAGEPretrainHead` predicts the masked ids with
    its output layer tied to the backbone's embedding table.

    Every trainable parameter receives a gradient each step (the official
    model's unused legacy tensors are not created), so DDP needs no
    ``find_unused_parameters``.

    Args:
        backbone (dict): ``MAGEViT`` config.
        neck (dict): ``MAGEPretrainDecoder`` config.
        head (dict): ``MAGEPretrainHead`` config.
        target_generator (dict): ``MAGEVQGAN`` config.
        pretrained (str, optional): Checkpoint loaded at init. Defaults to None.
        data_preprocessor (dict, optional): Defaults to ``SelfSupDataPreprocessor``
            with mean 0 / std 255 (images in [0, 1], RGB), the official input.
        init_cfg (dict | list, optional): Initialisation config.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 target_generator: dict,
                 pretrained: Optional[str] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='SelfSupDataPreprocessor', mean=[0., 0., 0.], std=[255., 255., 255.],
                                     to_rgb=True)
        super().__init__(backbone=backbone, neck=neck, head=head, target_generator=target_generator,
                         pretrained=pretrained, data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self._check_compatible()

    def _check_compatible(self) -> None:
        bb, tok = self.backbone, self.target_generator
        if tok.num_codes != bb.codebook_size:
            raise ValueError(f'tokenizer has {tok.num_codes} codes but backbone.codebook_size is {bb.codebook_size}')
        if self.neck.num_tokens != bb.num_tokens:
            raise ValueError(f'neck.num_tokens={self.neck.num_tokens} but the backbone has {bb.num_tokens} tokens')
        if self.head.vocab_size != bb.vocab_size or self.head.codebook_size != bb.codebook_size:
            raise ValueError(f'head (vocab {self.head.vocab_size}, codebook {self.head.codebook_size}) does not '
                             f'match the backbone (vocab {bb.vocab_size}, codebook {bb.codebook_size})')

    @torch.no_grad()
    def tokenize(self, inputs: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] (B, 3, H, W) → token ids (B, N) with the frozen VQGAN."""
        return self.target_generator.encode(inputs)

    def extract_feat(self, inputs: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Plain (unmasked) backbone features of images."""
        return self.backbone(self.tokenize(inputs))

    def predict_logits(self, ids: torch.Tensor, token_drop_mask: torch.Tensor,
                       token_all_mask: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        """One full network call with explicit masks → logits (B, 1 + N, vocab).

        ``labels`` (B,): class ids for a class-conditional decoder (``MAGECond``).
        """
        out = self.backbone(ids, mask=(token_drop_mask, token_all_mask))
        extra = {} if labels is None else dict(labels=labels)
        feats = self.neck(out.latent, out.token_drop_mask, out.token_all_mask, **extra)
        return self.head(feats, self.backbone.word_embeddings)

    def loss(self, inputs: Union[torch.Tensor, List[torch.Tensor]], data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        """Variable-ratio masked token modelling loss."""
        if isinstance(inputs, (list, tuple)):
            inputs = inputs[0]
        ids = self.tokenize(inputs)
        out = self.backbone(ids, mask=True)
        feats = self.neck(out.latent, out.token_drop_mask, out.token_all_mask)
        loss = self.head.loss(feats, ids, out.token_all_mask, self.backbone.word_embeddings)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f'MAGE loss is {loss.item()} (masked tokens: {int(out.token_all_mask.sum())}); '
                'check the learning rate, the input range ([0, 1] expected) and AMP settings. '
                'The last saved checkpoint is intact; resume from it with --resume.')
        return dict(loss=loss)
