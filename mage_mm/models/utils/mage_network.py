"""The MAGE network call, shared by the pretraining algorithm and the mmagic generator.

:class:`~mage_mm.models.algorithms.MAGE` (mmpretrain) and
:class:`~mage_mm.models.generators.mage_generator.MAGEGenerator` (mmagic) derive from different
OpenMMLab base classes but hold the same parts under the same names — ``backbone`` (a
:class:`MAGEViT` that owns the frozen tokenizer as ``backbone.tokenizer``), ``neck`` (the
:class:`MAGEPretrainDecoder`) and ``head`` (the :class:`MAGEPretrainHead`) — so both mix this in.
Plain torch: importing it pulls in neither mmagic nor mmdet.
"""
from typing import Optional

import torch
import torch.nn as nn


class MAGENetworkMixin:
    """Tokenizer access, size checks and one full network call over ``backbone``/``neck``/``head``.

    Every model that contains the MAGE tokenizer keeps it at ``backbone.tokenizer``, so the
    tokenizer's keys are ``backbone.tokenizer.*`` in every checkpoint (pretraining, generation,
    linear probe, fine-tuning, detection) and one ``init_cfg=dict(type='Pretrained',
    prefix='backbone.')`` on a backbone initialises the encoder and the tokenizer together.
    """

    backbone: nn.Module
    neck: nn.Module
    head: nn.Module

    @property
    def tokenizer(self) -> nn.Module:
        """The frozen :class:`MAGEVQGAN` (``backbone.tokenizer``)."""
        return self.backbone.tokenizer

    def _check_compatible(self) -> None:
        bb, tok = self.backbone, getattr(self.backbone, 'tokenizer', None)
        if tok is None:
            raise ValueError(f'{type(self).__name__} needs the tokenizer inside the backbone: '
                             "backbone=dict(type='MAGEViT', ..., tokenizer=dict(type='MAGEVQGAN', arch=...))")
        if tok.num_codes != bb.codebook_size:
            raise ValueError(f'tokenizer has {tok.num_codes} codes but backbone.codebook_size is {bb.codebook_size}')
        if self.neck.num_tokens != bb.num_tokens:
            raise ValueError(f'neck.num_tokens={self.neck.num_tokens} but the backbone has {bb.num_tokens} tokens')
        if self.head.vocab_size != bb.vocab_size or self.head.codebook_size != bb.codebook_size:
            raise ValueError(f'head (vocab {self.head.vocab_size}, codebook {self.head.codebook_size}) does not '
                             f'match the backbone (vocab {bb.vocab_size}, codebook {bb.codebook_size})')

    @torch.no_grad()
    def tokenize(self, inputs: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] (B, 3, H, W) → token ids (B, N) with the frozen tokenizer."""
        return self.tokenizer.encode(inputs)

    def predict_logits(self, ids: torch.Tensor, token_drop_mask: torch.Tensor, token_all_mask: torch.Tensor,
                       labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        """One full network call with explicit masks → logits (B, 1 + N, vocab).

        ``labels`` (B,): class ids for a class-conditional decoder (``MAGECond``).
        """
        out = self.backbone(ids, mask=(token_drop_mask, token_all_mask))
        extra = {} if labels is None else dict(labels=labels)
        feats = self.neck(out.latent, out.token_drop_mask, out.token_all_mask, **extra)
        return self.head(feats, self.backbone.word_embeddings)


__all__ = ['MAGENetworkMixin']
