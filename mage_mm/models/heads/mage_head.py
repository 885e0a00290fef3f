"""MAGE masked-token prediction head (registered as ``MAGEPretrainHead``)."""
from typing import Optional, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS

from ..utils.transformer import init_transformer_weights


@MODELS.register_module()
class MAGEPretrainHead(BaseModule):
    """MLM layer tied to the input embedding, with a label-smoothed CE loss.

    ``logits = LN(GELU(fc(x))) @ Eᵀ + bias`` where ``E`` is the encoder's word
    embedding table, used *detached* as in the official code (no gradient
    reaches the embedding from the output side). The loss is cross-entropy
    with label smoothing over the first ``codebook_size`` columns, averaged
    over every masked image position.

    Args:
        in_channels (int): Decoder width. Defaults to 768.
        embed_dims (int): Encoder width (the embedding table's). Defaults to 768.
        vocab_size (int): Embedding rows. Defaults to 2025.
        codebook_size (int): Columns the loss uses. Defaults to 1024.
        label_smoothing (float): Label smoothing. Defaults to 0.1.
        norm_eps (float): LayerNorm epsilon; the official MLM layer uses the
            PyTorch default. Defaults to 1e-5.
        detach_embedding (bool): Detach the tied table (official). Defaults to True.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 in_channels: int = 768,
                 embed_dims: int = 768,
                 vocab_size: int = 2025,
                 codebook_size: int = 1024,
                 label_smoothing: float = 0.1,
                 norm_eps: float = 1e-5,
                 detach_embedding: bool = True,
                 init_cfg: Optional[Union[dict, list]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.codebook_size = codebook_size
        self.vocab_size = vocab_size
        self.label_smoothing = label_smoothing
        self.detach_embedding = detach_embedding
        self.fc = nn.Linear(in_channels, embed_dims)
        self.ln = nn.LayerNorm(embed_dims, eps=norm_eps)
        self.bias = nn.Parameter(torch.zeros(1, 1, vocab_size))

    def init_weights(self) -> None:
        super().init_weights()
        if not (isinstance(self.init_cfg, dict) and self.init_cfg.get('type') == 'Pretrained'):
            self.apply(init_transformer_weights)

    def forward(self, x: torch.Tensor, word_embeddings: torch.Tensor) -> torch.Tensor:
        """Decoder features (B, L, D_dec) → logits (B, L, vocab_size)."""
        if word_embeddings.shape[0] != self.vocab_size:
            raise ValueError(f'embedding table has {word_embeddings.shape[0]} rows; head expects {self.vocab_size}')
        table = word_embeddings.detach() if self.detach_embedding else word_embeddings
        h = self.ln(F.gelu(self.fc(x)))
        return h @ table.t() + self.bias

    def per_token_loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Label-smoothed CE per image position: logits (B, 1 + N, V), target (B, N) → (B, N)."""
        code_logits = logits[:, 1:, :self.codebook_size]
        return F.cross_entropy(code_logits.transpose(1, 2).float(), target, reduction='none',
                               label_smoothing=self.label_smoothing)

    def loss(self, x: torch.Tensor, target: torch.Tensor, token_all_mask: torch.Tensor,
             word_embeddings: torch.Tensor) -> torch.Tensor:
        """Mean loss over all masked image positions of the batch."""
        per_token = self.per_token_loss(self(x, word_embeddings), target)
        mask = token_all_mask[:, 1:].to(per_token.dtype)
        return (per_token * mask).sum() / mask.sum().clamp_min(1.0)
