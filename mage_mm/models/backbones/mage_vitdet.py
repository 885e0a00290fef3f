"""MAGE's encoder as a ViTDet-style detection backbone (registered in mmdet's
``MODELS`` as ``MAGEViTDet``; import ``mage_mm.models.detection``)."""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmdet.registry import MODELS as MMDET_MODELS

from ..utils.transformer import Block
from .mage_vit import MAGEViT


@MMDET_MODELS.register_module()
class MAGEViTDet(MAGEViT):
    """MAGE encoder for dense prediction (ViTDet recipe, Li et al. 2022,
    https://arxiv.org/abs/2203.16527) on top of :class:`MAGEViT`.

    Images in [0, 1] go through the frozen, fully convolutional tokenizer
    (1024 px → 64×64 tokens with the official f=16 VQGAN); the learned 16×16
    position table is bicubically resized to the token grid; most blocks attend
    within non-overlapping windows and ``global_indices`` attend globally.
    Parameter names are those of :class:`MAGEViT`, so MAGE checkpoints load
    with ``init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone.')``.

    The class slot (the constant fake-class token every MAGE sequence starts
    with) is kept by default: global blocks see it as in pretraining; window
    blocks give every window its own copy and average the copies afterwards.
    ``keep_class_slot=False`` drops it (as ViTDet drops MAE's cls token).

    Args:
        arch (str | dict): See :class:`MAGEViT`. Defaults to ``'b'``.
        window_size (int): Window side in tokens; 0 makes every block global.
            Defaults to 16 (the pretraining token grid, so a window block sees
            the same span as in pretraining).
        global_indices (Sequence[int]): Blocks with global attention.
            Defaults to (2, 5, 8, 11) (ViTDet's ViT-B choice).
        keep_class_slot (bool): See above. Defaults to True.
        out_indices (int | Sequence[int]): Blocks whose outputs are returned
            as (B, C, h, w) maps after the final norm. Defaults to -1.
        drop_rate (float): Dropout in the blocks. Defaults to 0.
        attn_drop_rate (float): Attention dropout. Defaults to 0.
        drop_path_rate (float): Stochastic depth. Defaults to 0.1.
        embed_drop_rate (float): Token-embedding dropout. Defaults to 0.
        with_cp (bool): Gradient checkpointing of the blocks (saves memory
            for ViT-L at 1024 px). Defaults to False.
        tokenizer (dict): ``MAGEVQGAN`` config (resolved in mmpretrain's registry).
        **kwargs: Other :class:`MAGEViT` arguments (``codebook_size``,
            ``token_grid``, ``init_cfg`` ...).
    """

    def __init__(self,
                 arch='b',
                 window_size: int = 16,
                 global_indices: Sequence[int] = (2, 5, 8, 11),
                 keep_class_slot: bool = True,
                 out_indices=-1,
                 drop_rate: float = 0.0,
                 attn_drop_rate: float = 0.0,
                 drop_path_rate: float = 0.1,
                 embed_drop_rate: float = 0.0,
                 with_cp: bool = False,
                 tokenizer: Optional[dict] = None,
                 **kwargs) -> None:
        if tokenizer is None:
            raise ValueError('MAGEViTDet consumes images: pass tokenizer=dict(type=\'MAGEVQGAN\', ...)')
        for fixed in ('out_type', 'interpolate_pos'):
            if fixed in kwargs:
                raise TypeError(f'MAGEViTDet sets {fixed} itself')
        super().__init__(arch=arch, out_type='featmap', out_indices=out_indices, interpolate_pos=True,
                         drop_rate=drop_rate, attn_drop_rate=attn_drop_rate, drop_path_rate=drop_path_rate,
                         embed_drop_rate=embed_drop_rate, tokenizer=tokenizer, **kwargs)
        if window_size < 0:
            raise ValueError(f'window_size must be >= 0, got {window_size}')
        self.global_indices = sorted({i % self.num_layers for i in global_indices})
        self.window_size = window_size
        self.keep_class_slot = keep_class_slot
        self.with_cp = with_cp

    def _window_block(self, block: Block, x: torch.Tensor, grid: Tuple[int, int]) -> torch.Tensor:
        """One block with window attention on ``x`` = [class slot +] image tokens (B, [1 +] N, C).

        As in ViTDet only the attention is windowed: norm1 → partition →
        attention → merge → residual, then the per-token MLP on the full
        sequence, so stochastic depth drops whole images, not single windows.
        """
        has_cls = self.keep_class_slot
        B, L, C = x.shape
        H, W = grid
        ws = self.window_size
        h = block.norm1(x)
        cls, h = (h[:, :1], h[:, 1:]) if has_cls else (None, h)
        pad_h, pad_w = (-H) % ws, (-W) % ws
        h = h.reshape(B, H, W, C)
        if pad_h or pad_w:
            h = F.pad(h, (0, 0, 0, pad_w, 0, pad_h))
        nh, nw = (H + pad_h) // ws, (W + pad_w) // ws
        windows = h.reshape(B, nh, ws, nw, ws, C).permute(0, 1, 3, 2, 4, 5).reshape(B * nh * nw, ws * ws, C)
        attn_mask = None
        if pad_h or pad_w:
            # padded positions are never attended to (ViTDet lets its zero padding in)
            valid = torch.zeros(H + pad_h, W + pad_w, dtype=torch.bool, device=x.device)
            valid[:H, :W] = True
            valid = valid.reshape(nh, ws, nw, ws).permute(0, 2, 1, 3).reshape(nh * nw, ws * ws)
            if has_cls:
                valid = torch.cat([valid.new_ones(nh * nw, 1), valid], dim=1)
            attn_mask = valid.repeat(B, 1)[:, None, None, :]
        if has_cls:
            windows = torch.cat([cls.repeat_interleave(nh * nw, dim=0), windows], dim=1)
        out = block.attn(windows, attn_mask=attn_mask)
        if has_cls:
            # every window had its own copy of the class slot: average the copies
            cls_out = out[:, :1].reshape(B, nh * nw, C).mean(dim=1, keepdim=True)
            out = out[:, 1:]
        out = out.reshape(B, nh, nw, ws, ws, C).permute(0, 1, 3, 2, 4, 5).reshape(B, H + pad_h, W + pad_w, C)
        out = out[:, :H, :W].reshape(B, H * W, C)
        if has_cls:
            out = torch.cat([cls_out, out], dim=1)
        x = x + block.drop_path(out)
        return x + block.drop_path(block.mlp(block.norm2(x)))

    def _run_block(self, i: int, x: torch.Tensor, grid: Tuple[int, int]) -> torch.Tensor:
        block = self.blocks[i]
        windowed = self.window_size > 0 and i not in self.global_indices
        fn = (lambda t: self._window_block(block, t, grid)) if windowed else block
        if self.with_cp and x.requires_grad:
            return cp.checkpoint(fn, x, use_reentrant=False)
        return fn(x)

    def forward(self, x: torch.Tensor, mask=None) -> Tuple[torch.Tensor, ...]:
        """Images in [0, 1] (B, 3, H, W) → tuple of (B, C, H/f, W/f) maps."""
        if mask is not None and mask is not False:
            raise TypeError('MAGEViTDet has no masked mode; use MAGEViT for pretraining')
        if not x.is_floating_point():
            raise TypeError('MAGEViTDet expects images in [0, 1], got integer input')
        ids, grid = self.tokenize(x)
        x = self.token_emb(self._with_class_slot(ids), self._position_embeddings(grid))
        if not self.keep_class_slot:
            x = x[:, 1:]
        B, _, C = x.shape
        outs = []
        for i in range(self.num_layers):
            x = self._run_block(i, x, grid)
            if i in self.out_indices:
                tokens = x[:, 1:] if self.keep_class_slot else x
                outs.append(self.norm(tokens).transpose(1, 2).reshape(B, C, *grid).contiguous())
        return tuple(outs)
