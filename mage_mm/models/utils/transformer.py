"""Pre-norm ViT block with the official MAGE/timm parameter names.

The key layout (``norm1``, ``attn.qkv``, ``attn.proj``, ``norm2``, ``mlp.fc1``,
``mlp.fc2``) equals the official checkpoints, so conversion is a prefix change.
"""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F


class DropPath(nn.Module):
    """Stochastic depth per sample (used only for fine-tuning).

    Args:
        drop_prob (float): Probability of dropping the residual branch.
            Defaults to 0.
    """

    def __init__(self, drop_prob: float = 0.0) -> None:
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep = 1.0 - self.drop_prob
        shape = (x.shape[0], ) + (1, ) * (x.ndim - 1)
        mask = x.new_empty(shape).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f'drop_prob={self.drop_prob}'


class Attention(nn.Module):
    """Multi-head self-attention through ``F.scaled_dot_product_attention``.

    Args:
        dim (int): Embedding width.
        num_heads (int): Number of heads. Defaults to 8.
        attn_drop (float): Dropout on attention probabilities. Defaults to 0.
        proj_drop (float): Dropout after the output projection. Defaults to 0.
        fp32_attention (bool): Compute attention in float32 when autocast is
            active, as the official code does for ``q·kᵀ`` (it avoids fp16
            overflow NaNs with ViT-L). Has no effect outside autocast.
            False (the ``attention_precision='follow'`` fast path) computes it
            in the autocast dtype; on CPU with attention dropout that is an
            explicit ``q·kᵀ`` → softmax → dropout → ``·v`` (SDPA's CPU kernel
            takes no dropout and its math path costs more). Defaults to True.
    """

    def __init__(self,
                 dim: int,
                 num_heads: int = 8,
                 attn_drop: float = 0.0,
                 proj_drop: float = 0.0,
                 fp32_attention: bool = True) -> None:
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f'embed dim {dim} is not divisible by num_heads {num_heads}')
        self.num_heads = num_heads
        self.attn_drop = attn_drop
        self.fp32_attention = fp32_attention
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor, attn_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        dropout_p = self.attn_drop if self.training else 0.0
        if self.fp32_attention and torch.is_autocast_enabled(x.device.type):
            with torch.autocast(x.device.type, enabled=False):
                out = F.scaled_dot_product_attention(
                    q.float(), k.float(), v.float(), attn_mask=attn_mask, dropout_p=dropout_p)
            out = out.to(v.dtype)
        elif dropout_p > 0 and x.device.type == 'cpu' and torch.is_autocast_enabled('cpu'):
            # fast path (fp32_attention=False): the whole attention in the autocast dtype
            attn = (q * q.shape[-1]**-0.5) @ k.transpose(-2, -1)
            if attn_mask is not None:
                attn = attn.masked_fill(~attn_mask, float('-inf')) if attn_mask.dtype == torch.bool \
                    else attn + attn_mask
            out = F.dropout(attn.softmax(dim=-1), dropout_p, training=True) @ v
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p)
        out = out.transpose(1, 2).reshape(B, N, C)
        return self.proj_drop(self.proj(out))


class Mlp(nn.Module):
    """fc1 → exact GELU → dropout → fc2 → dropout (timm ``Mlp``)."""

    def __init__(self, in_features: int, hidden_features: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_features, in_features)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm1(x))``, ``x + mlp(norm2(x))``.

    Args:
        dim (int): Embedding width.
        num_heads (int): Number of attention heads.
        mlp_hidden_dim (int): Hidden width of the MLP.
        drop (float): Dropout after projections and in the MLP. Defaults to 0.
        attn_drop (float): Attention-probability dropout. Defaults to 0.
        drop_path (float): Stochastic depth rate. Defaults to 0.
        norm_eps (float): LayerNorm epsilon. Defaults to 1e-6.
        fp32_attention (bool): See :class:`Attention`. Defaults to True.
    """

    def __init__(self,
                 dim: int,
                 num_heads: int,
                 mlp_hidden_dim: int,
                 drop: float = 0.0,
                 attn_drop: float = 0.0,
                 drop_path: float = 0.0,
                 norm_eps: float = 1e-6,
                 fp32_attention: bool = True) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, attn_drop=attn_drop, proj_drop=drop,
                              fp32_attention=fp32_attention)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, mlp_hidden_dim, drop=drop)

    def forward(self, x: torch.Tensor, attn_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), attn_mask=attn_mask))
        x = x + self.drop_path(self.mlp(self.norm2(x)))
        return x


def init_transformer_weights(module: nn.Module) -> None:
    """Official init: xavier-uniform Linear weights, zero biases, LN (1, 0)."""
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
