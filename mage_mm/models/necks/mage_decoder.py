"""MAGE pretraining decoder (registered as ``MAGEPretrainDecoder``)."""
from typing import Optional, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS

from ..utils.transformer import Block, init_transformer_weights
from .class_embedding import ClassEmbedding


@MODELS.register_module()
class MAGEPretrainDecoder(BaseModule):
    """Decoder that pads with the class-slot feature instead of a mask token.

    The kept encoder outputs are embedded, scattered back to their positions
    on a canvas filled with the embedded class-slot output; every masked
    position (dropped or kept-as-[MASK]) is overwritten with that feature too;
    learned positions are added; then transformer blocks and a LayerNorm.

    Args:
        num_tokens (int): Image tokens (the canvas has 1 + num_tokens
            positions). Defaults to 256.
        in_channels (int): Encoder width. Defaults to 768.
        embed_dims (int): Decoder width. Defaults to 768.
        num_layers (int): Decoder depth. Defaults to 8.
        num_heads (int): Decoder heads. Defaults to 16.
        mlp_ratio (float): MLP hidden ratio. Defaults to 4.
        drop_rate (float): Projection/MLP dropout. Defaults to 0.1.
        attn_drop_rate (float): Attention dropout. Defaults to 0.1.
        norm_eps (float): LayerNorm epsilon. Defaults to 1e-6.
        fp32_attention (bool): See ``Attention``. Defaults to True.
        num_classes (int, optional): Class-conditional decoder (``MAGECond``):
            a :class:`ClassEmbedding` ``class_embed`` of ``num_classes + 1``
            rows (the last is the null class), zero-initialised, and
            :meth:`forward` takes ``labels``. The paper (appendix A.2) and its
            author (LTH14/mage#16: "another token_embedding which embeds the
            class label ... concatenate it with the input to the decoder
            (padded feature)", encoder frozen) say no more. None (official):
            unconditional. Defaults to None.
        class_injection (str): How the class vector enters (our choices):
            ``'add'``: added to every position of the decoder input (after the
            padding and the learned positions, before the first block), i.e. a
            per-token channel concatenation followed by a linear map; with the
            zero init a fresh conditional decoder equals the unconditional one.
            ``'token'``: prepended to the decoder sequence as one extra token
            (no position embedding), removed after ``decoder_norm``; this
            changes the output even at zero init. Defaults to ``'add'``.
        init_cfg (dict, optional): Initialisation config.
    """

    CLASS_INJECTIONS = ('add', 'token')

    def __init__(self,
                 num_tokens: int = 256,
                 in_channels: int = 768,
                 embed_dims: int = 768,
                 num_layers: int = 8,
                 num_heads: int = 16,
                 mlp_ratio: float = 4.0,
                 drop_rate: float = 0.1,
                 attn_drop_rate: float = 0.1,
                 norm_eps: float = 1e-6,
                 fp32_attention: bool = True,
                 num_classes: Optional[int] = None,
                 class_injection: str = 'add',
                 init_cfg: Optional[Union[dict, list]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if class_injection not in self.CLASS_INJECTIONS:
            raise ValueError(f'class_injection must be one of {self.CLASS_INJECTIONS}; got {class_injection!r}')
        self.num_tokens = num_tokens
        self.num_classes = num_classes
        self.class_injection = class_injection
        if num_classes is not None:
            self.class_embed = ClassEmbedding(num_classes, embed_dims)
        self.decoder_embed = nn.Linear(in_channels, embed_dims)
        self.decoder_pos_embed = nn.Parameter(torch.zeros(1, num_tokens + 1, embed_dims))
        self.decoder_blocks = nn.ModuleList([
            Block(embed_dims, num_heads, int(embed_dims * mlp_ratio), drop=drop_rate, attn_drop=attn_drop_rate,
                  norm_eps=norm_eps, fp32_attention=fp32_attention) for _ in range(num_layers)
        ])
        self.decoder_norm = nn.LayerNorm(embed_dims, eps=norm_eps)

    def init_weights(self) -> None:
        super().init_weights()
        if not (isinstance(self.init_cfg, dict) and self.init_cfg.get('type') == 'Pretrained'):
            self.apply(init_transformer_weights)
            nn.init.normal_(self.decoder_pos_embed, std=0.02)

    def forward(self, latent: torch.Tensor, token_drop_mask: torch.Tensor,
                token_all_mask: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Args:
            latent (Tensor): (B, 1 + kept, D_enc) encoder output.
            token_drop_mask (Tensor): (B, 1 + N) bool, dropped positions.
            token_all_mask (Tensor): (B, 1 + N) bool, masked positions.
            labels (Tensor, optional): (B,) class ids in ``[0, num_classes]``
                (``num_classes`` = null class) for a conditional decoder;
                None = the null class. An unconditional decoder refuses labels.

        Returns:
            Tensor: (B, 1 + N, D_dec) decoded features.
        """
        x = self.decoder_embed(latent)
        B, L = token_all_mask.shape
        if L != self.decoder_pos_embed.shape[1]:
            raise ValueError(f'masks have {L} positions but the decoder was built for '
                             f'{self.decoder_pos_embed.shape[1]} (num_tokens={self.num_tokens} + 1)')
        pad = x[:, :1].expand(B, L, x.shape[-1])
        if token_drop_mask is None:  # nothing dropped (MAGEViT's decoding path): every position is in x
            canvas = x
        else:
            canvas = pad.clone()
            canvas[~token_drop_mask.bool()] = x.reshape(-1, x.shape[-1])
        canvas = torch.where(token_all_mask.bool().unsqueeze(-1), pad, canvas)
        x = canvas + self.decoder_pos_embed
        if self.num_classes is None:
            if labels is not None:
                raise ValueError('this MAGEPretrainDecoder is unconditional (num_classes=None) but got labels; '
                                 'build it with num_classes=... (class-conditional MAGE)')
        else:
            if labels is None:
                labels = self.class_embed.null_labels(B, x.device)
            if len(labels) != B:
                raise ValueError(f'got {len(labels)} labels for a batch of {B}')
            cls = self.class_embed(labels).to(x.dtype).unsqueeze(1)
            x = x + cls if self.class_injection == 'add' else torch.cat([cls, x], dim=1)
        for block in self.decoder_blocks:
            x = block(x)
        x = self.decoder_norm(x)
        if self.num_classes is not None and self.class_injection == 'token':
            x = x[:, 1:]
        return x
