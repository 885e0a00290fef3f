"""MAGE's ViT encoder over VQGAN tokens (registered as ``MAGEViT``)."""
import copy
import math
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS

from ..utils.masking import TruncatedGaussianRatio, mask_counts, random_token_masks
from ..utils.pretrained import StrictPretrainedMixin  # a Pretrained init_cfg loads strictly
from ..utils.transformer import Block, init_transformer_weights


class MAGETokenEmbedding(nn.Module):
    """BERT-style token embedding: word + learned absolute position, LN, dropout.

    Args:
        vocab_size (int): Vocabulary (codebook + legacy class ids + mask).
        embed_dims (int): Width.
        num_positions (int): Length of the position table (1 + tokens).
        norm_eps (float): LayerNorm epsilon. Defaults to 1e-6.
        dropout (float): Dropout after the LayerNorm. Defaults to 0.1.
    """

    def __init__(self, vocab_size: int, embed_dims: int, num_positions: int, norm_eps: float = 1e-6,
                 dropout: float = 0.1) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab_size, embed_dims)
        self.position_embeddings = nn.Embedding(num_positions, embed_dims)
        self.LayerNorm = nn.LayerNorm(embed_dims, eps=norm_eps)
        self.dropout = nn.Dropout(dropout)
        # in the official state dict; kept so converted checkpoints load strictly
        self.register_buffer('position_ids', torch.arange(num_positions).unsqueeze(0), persistent=True)

    def forward(self, ids: torch.Tensor, position_embeddings: Optional[torch.Tensor] = None) -> torch.Tensor:
        if position_embeddings is None:
            if ids.shape[1] != self.position_ids.shape[1]:
                raise ValueError(f'{ids.shape[1]} input tokens but the position table has '
                                 f'{self.position_ids.shape[1]} entries (1 class slot + tokens); '
                                 'check the image size or set interpolate_pos=True')
            position_embeddings = self.position_embeddings(self.position_ids)
        x = self.word_embeddings(ids) + position_embeddings
        return self.dropout(self.LayerNorm(x))


class MAGEMaskedOutput(NamedTuple):
    """Result of a masked encoder pass.

    Attributes:
        latent (Tensor): (B, 1 + kept, D) encoder output after the final norm.
        token_drop_mask (Tensor): (B, 1 + N) bool, True where dropped (class column False).
        token_all_mask (Tensor): (B, 1 + N) bool, True where masked (dropped ones included).
    """
    latent: torch.Tensor
    token_drop_mask: torch.Tensor
    token_all_mask: torch.Tensor


@MODELS.register_module()
class MAGEViT(StrictPretrainedMixin, BaseModule):
    """MAGE's ViT encoder over VQGAN tokens.

    Sequence: ``[fake-class id] + token ids`` (the class slot is never masked)
    → :class:`MAGETokenEmbedding` → pre-norm blocks → final LayerNorm.

    Entry points:

    * ``forward(x)`` — plain features for benchmarks and transfer: ``x`` is
      images in [0, 1] (needs ``tokenizer``) or token ids (B, N); output is a
      tuple with one entry per ``out_indices`` formatted by ``out_type``.
    * ``forward(ids, mask=True)`` — pretraining: draws one masking ratio from
      the truncated Gaussian, masks and drops tokens, returns
      :class:`MAGEMaskedOutput`.
    * ``forward(ids, mask=(token_drop_mask, token_all_mask))`` — explicit masks
      (B, N) or (B, 1 + N) for parity, editing and iterative decoding.

    Args:
        arch (str | dict): ``'b'``/``'base'``, ``'l'``/``'large'``, or a dict
            with ``embed_dims, num_layers, num_heads, feedforward_channels``.
            Defaults to ``'b'``.
        codebook_size (int): Tokenizer codebook size. Defaults to 1024.
        num_legacy_class_ids (int): Unused class rows kept for checkpoint
            compatibility (vocabulary = codebook + these + mask). Defaults to 1000.
        fake_class_id (int): Id of the constant class slot. Defaults to 1100.
        token_grid (int | tuple): Token grid of the position table (16 → 257
            positions). Defaults to 16.
        drop_rate (float): Dropout in embeddings, projections and MLPs.
            Defaults to 0.1 (official pretraining).
        attn_drop_rate (float): Attention-probability dropout. Defaults to 0.1.
        drop_path_rate (float): Stochastic depth, linear over depth. Defaults to 0.
        embed_drop_rate (float, optional): Dropout after the token embedding;
            ``None`` uses ``drop_rate``. The official linear-probe/fine-tune
            model keeps 0.1 here while its blocks use 0. Defaults to None.
        norm_eps (float): LayerNorm epsilon. Defaults to 1e-6.
        mask_ratio_min (float): Lower bound of the masking ratio, also the
            dropped fraction. Defaults to 0.5.
        mask_ratio_max (float): Upper bound. Defaults to 1.0.
        mask_ratio_mu (float): Mean of the Gaussian. Defaults to 0.55.
        mask_ratio_std (float): Std of the Gaussian. Defaults to 0.25.
        ratio_group_size (int, optional): Draw one masking ratio per group of
            this many samples of a forward instead of one per forward. The
            official run draws one per process per step (64 GPUs x 64 images =
            64 ratios a step); 8 processes x 512 with ``ratio_group_size=64``
            draw the same 64 per step. Defaults to None: one per forward (the
            official per-process rule).
        out_type (str): Plain-feature output: ``'raw'`` (B, 1 + N, D) after the
            final norm, ``'cls_token'`` (class slot after the final norm),
            ``'avg_featmap'`` (mean of image tokens of the block output without
            the final norm, then ``fc_norm``: the official global-pool),
            ``'featmap'`` (B, D, h, w) after the final norm. Defaults to ``'raw'``.
        out_indices (int | Sequence[int]): Blocks whose outputs are returned.
            Defaults to -1.
        frozen_stages (int): Freeze the embedding (stage 0) and the first
            ``frozen_stages`` blocks; with all blocks, the norms too. -1 freezes
            nothing. Defaults to -1.
        eval_frozen (bool): Also keep the frozen modules in eval mode, which
            switches their dropout off (mmpretrain's ``VisionTransformer``
            convention). The official linear probe only stops gradients: its
            frozen encoder follows ``train()``, so the token-embedding dropout
            stays active while the probe trains. Defaults to False (official).
        interpolate_pos (bool): Bicubically resize the 2-D position table
            when the token grid differs (detection at other sizes). Defaults to False.
        fp32_attention (bool): Attention in fp32 under autocast (official).
            Defaults to True.
        tokenizer (dict, optional): A ``MAGEVQGAN`` config; needed to feed
            images. Defaults to None.
        init_cfg (dict | list, optional): Initialisation config.
    """

    arch_zoo: Dict[str, dict] = {
        **dict.fromkeys(['b', 'base'], dict(embed_dims=768, num_layers=12, num_heads=12,
                                            feedforward_channels=3072)),
        **dict.fromkeys(['l', 'large'], dict(embed_dims=1024, num_layers=24, num_heads=16,
                                             feedforward_channels=4096)),
    }
    OUT_TYPES = {'raw', 'cls_token', 'avg_featmap', 'featmap'}

    def __init__(self,
                 arch: Union[str, dict] = 'b',
                 codebook_size: int = 1024,
                 num_legacy_class_ids: int = 1000,
                 fake_class_id: int = 1100,
                 token_grid: Union[int, Tuple[int, int]] = 16,
                 drop_rate: float = 0.1,
                 attn_drop_rate: float = 0.1,
                 drop_path_rate: float = 0.0,
                 embed_drop_rate: Optional[float] = None,
                 norm_eps: float = 1e-6,
                 mask_ratio_min: float = 0.5,
                 mask_ratio_max: float = 1.0,
                 mask_ratio_mu: float = 0.55,
                 mask_ratio_std: float = 0.25,
                 ratio_group_size: Optional[int] = None,
                 out_type: str = 'raw',
                 out_indices: Union[int, Sequence[int]] = -1,
                 frozen_stages: int = -1,
                 eval_frozen: bool = False,
                 interpolate_pos: bool = False,
                 fp32_attention: bool = True,
                 tokenizer: Optional[dict] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if isinstance(arch, str):
            if arch.lower() not in self.arch_zoo:
                raise KeyError(f'unknown MAGEViT arch {arch!r}; choose from {sorted(set(self.arch_zoo))} or a dict')
            arch = self.arch_zoo[arch.lower()]
        arch = copy.deepcopy(dict(arch))
        missing = {'embed_dims', 'num_layers', 'num_heads', 'feedforward_channels'} - set(arch)
        if missing:
            raise KeyError(f'MAGEViT arch dict is missing {sorted(missing)}')
        if out_type not in self.OUT_TYPES:
            raise ValueError(f'unsupported out_type {out_type!r}; choose from {sorted(self.OUT_TYPES)}')
        self.arch = arch
        self.embed_dims = arch['embed_dims']
        self.num_layers = arch['num_layers']
        self.codebook_size = codebook_size
        self.vocab_size = codebook_size + num_legacy_class_ids + 1
        self.mask_id = self.vocab_size - 1
        if not codebook_size <= fake_class_id < self.mask_id:
            raise ValueError(f'fake_class_id must be a non-code, non-mask id in [{codebook_size}, '
                             f'{self.mask_id}); got {fake_class_id}')
        self.fake_class_id = fake_class_id
        self.token_grid = (token_grid, token_grid) if isinstance(token_grid, int) else tuple(token_grid)
        self.num_tokens = self.token_grid[0] * self.token_grid[1]
        self.interpolate_pos = interpolate_pos
        self.out_type = out_type
        self.mask_ratio_min = mask_ratio_min
        self.ratio_sampler = TruncatedGaussianRatio(mask_ratio_min, mask_ratio_max, mask_ratio_mu, mask_ratio_std)
        if ratio_group_size is not None and ratio_group_size < 1:
            raise ValueError(f'ratio_group_size must be >= 1 or None, got {ratio_group_size}')
        self.ratio_group_size = ratio_group_size

        self.token_emb = MAGETokenEmbedding(self.vocab_size, self.embed_dims, self.num_tokens + 1, norm_eps,
                                            drop_rate if embed_drop_rate is None else embed_drop_rate)
        dpr = [drop_path_rate * i / max(self.num_layers - 1, 1) for i in range(self.num_layers)]
        self.blocks = nn.ModuleList([
            Block(self.embed_dims, arch['num_heads'], arch['feedforward_channels'], drop=drop_rate,
                  attn_drop=attn_drop_rate, drop_path=dpr[i], norm_eps=norm_eps, fp32_attention=fp32_attention)
            for i in range(self.num_layers)
        ])
        if out_type == 'avg_featmap':
            # global pool: the final norm is replaced by fc_norm and not created, so that
            # every parameter gets a gradient (DDP without find_unused_parameters)
            self.fc_norm = nn.LayerNorm(self.embed_dims, eps=norm_eps)
        else:
            self.norm = nn.LayerNorm(self.embed_dims, eps=norm_eps)

        out_indices = [out_indices] if isinstance(out_indices, int) else list(out_indices)
        self.out_indices = [i % self.num_layers for i in out_indices]
        if isinstance(tokenizer, dict):
            # resolve MAGEVQGAN in mmpretrain's registry whatever the default scope (mmdet configs)
            tokenizer = MODELS.build({'_scope_': 'mmpretrain', **tokenizer})
        self.tokenizer = tokenizer
        self.frozen_stages = frozen_stages
        self.eval_frozen = eval_frozen
        self._freeze_stages()

    # ------------------------------------------------------------------ setup
    def init_weights(self) -> None:
        super().init_weights()
        if self.init_cfg is None or (isinstance(self.init_cfg, dict)
                                     and self.init_cfg.get('type') != 'Pretrained'):
            # official init (a Pretrained init_cfg loads after this anyway)
            for name, m in self.named_modules():
                if not name.startswith('tokenizer'):
                    init_transformer_weights(m)
            nn.init.normal_(self.token_emb.word_embeddings.weight, std=0.02)
            nn.init.normal_(self.token_emb.position_embeddings.weight, std=0.02)
        self._freeze_stages()

    def pretrained_key_rules(self) -> Tuple[List[str], List[str]]:
        """Strict Pretrained load: with the official global pool ``fc_norm`` is new and the final norm unused."""
        if self.out_type == 'avg_featmap':
            return ['fc_norm.*'], ['norm.*']
        return [], []

    def _freeze_stages(self) -> None:
        if self.frozen_stages < 0:
            return
        frozen = [self.token_emb] + list(self.blocks[:self.frozen_stages])
        if self.frozen_stages >= self.num_layers:
            frozen += [getattr(self, name) for name in ('norm', 'fc_norm') if hasattr(self, name)]
        for module in frozen:
            if self.eval_frozen:
                module.eval()
            module.requires_grad_(False)

    def train(self, mode: bool = True) -> 'MAGEViT':
        super().train(mode)
        self._freeze_stages()
        return self

    def get_layer_depth(self, param_name: str, prefix: str = '') -> Tuple[int, int]:
        """Layer depth for layer-wise lr decay (mmpretrain convention).

        ``token_emb`` → 0, ``blocks.i`` → i + 1, everything else (norms, heads)
        → ``num_layers + 1``. Returns ``(depth, num_layers + 2)``.
        """
        num_layers = self.num_layers + 2
        if not param_name.startswith(prefix):
            return num_layers - 1, num_layers
        name = param_name[len(prefix):]
        if name.startswith('token_emb') or name.startswith('tokenizer'):
            depth = 0
        elif name.startswith('blocks.'):
            depth = int(name.split('.')[1]) + 1
        else:
            depth = num_layers - 1
        return depth, num_layers

    # --------------------------------------------------------------- helpers
    @property
    def word_embeddings(self) -> torch.Tensor:
        """The input embedding table the MLM head is tied to."""
        return self.token_emb.word_embeddings.weight

    def tokenize(self, x: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        """Images (B, 3, H, W) or ids (B, N) → ids (B, N) and the token grid."""
        if x.is_floating_point():
            if self.tokenizer is None:
                raise ValueError('MAGEViT got images but has no tokenizer; pass tokenizer=dict(type='
                                 "'MAGEVQGAN', ...) or feed token ids")
            with torch.no_grad():
                grid = self.tokenizer.token_grid(*x.shape[-2:])
                ids = self.tokenizer.encode(x)
            return ids, grid
        if x.dim() != 2:
            raise ValueError(f'token ids must be (B, N); got {tuple(x.shape)}')
        n = x.shape[1]
        grid = self.token_grid if n == self.num_tokens else (int(math.isqrt(n)), ) * 2
        return x, grid

    def _position_embeddings(self, grid: Tuple[int, int]) -> Optional[torch.Tensor]:
        if tuple(grid) == self.token_grid:
            return None
        if not self.interpolate_pos:
            raise ValueError(f'token grid {grid[0]}x{grid[1]} differs from the position table\'s '
                             f'{self.token_grid[0]}x{self.token_grid[1]}; feed images of '
                             f'{self.token_grid[0]}x{self.token_grid[1]} tokens or set interpolate_pos=True')
        table = self.token_emb.position_embeddings.weight
        cls_pos, grid_pos = table[:1], table[1:]
        grid_pos = grid_pos.reshape(1, *self.token_grid, -1).permute(0, 3, 1, 2)
        grid_pos = F.interpolate(grid_pos, size=tuple(grid), mode='bicubic', align_corners=False)
        grid_pos = grid_pos.permute(0, 2, 3, 1).reshape(-1, table.shape[1])
        return torch.cat([cls_pos, grid_pos], dim=0).unsqueeze(0)

    def _with_class_slot(self, ids: torch.Tensor) -> torch.Tensor:
        cls = ids.new_full((ids.shape[0], 1), self.fake_class_id)
        return torch.cat([cls, ids], dim=1)

    @staticmethod
    def _with_class_column(mask: torch.Tensor, num_tokens: int) -> torch.Tensor:
        mask = mask.bool()
        if mask.shape[1] == num_tokens:
            mask = torch.cat([mask.new_zeros(mask.shape[0], 1), mask], dim=1)
        elif mask.shape[1] != num_tokens + 1:
            raise ValueError(f'mask has {mask.shape[1]} columns; expected {num_tokens} or {num_tokens + 1}')
        elif mask[:, 0].any():
            raise ValueError('the class slot (column 0) can never be masked or dropped')
        return mask

    # ------------------------------------------------------------- masking
    def sample_masks(self, batch_size: int, num_tokens: int, device=None,
                     ratio: Optional[float] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """Draw one ratio (or use ``ratio``) and per-sample masks, (B, 1 + N) bool each."""
        group = self.ratio_group_size
        if ratio is None and group is not None and batch_size > group:
            # one ratio per sub-batch of `group` samples; every sample still drops the same count
            ratios = self.ratio_sampler.sample(-(-batch_size // group))
            counts = [mask_counts(num_tokens, float(r), self.mask_ratio_min) for r in ratios]
            num_dropped = counts[0][1]
            masked = torch.tensor([c[0] for c in counts], device=device).repeat_interleave(group)[:batch_size]
            # the rule of random_token_masks with a per-sample masked count: the dropped set stays a subset
            ranks = torch.rand(batch_size, num_tokens, device=device).argsort(dim=1).argsort(dim=1)
            drop, all_ = ranks < num_dropped, ranks < masked[:, None]
            return self._with_class_column(drop, num_tokens), self._with_class_column(all_, num_tokens)
        ratio = self.ratio_sampler.sample() if ratio is None else ratio
        num_masked, num_dropped = mask_counts(num_tokens, ratio, self.mask_ratio_min)
        drop, all_ = random_token_masks(batch_size, num_tokens, num_masked, num_dropped, device=device)
        return self._with_class_column(drop, num_tokens), self._with_class_column(all_, num_tokens)

    def forward_masked(self, ids: torch.Tensor, token_drop_mask: torch.Tensor, token_all_mask: torch.Tensor,
                       grid: Optional[Tuple[int, int]] = None) -> MAGEMaskedOutput:
        """Encode with explicit masks: masked ids → [MASK], dropped positions removed.

        Every sample must drop the same number of tokens (the kept tokens are
        stacked into one tensor). ``token_drop_mask=None``: nothing dropped
        (decoding, editing): no mask checks and no boolean indexing, so the
        shapes do not depend on the data and ``torch.compile`` keeps one graph;
        the values are those of an all-False drop mask. The output's
        ``token_drop_mask`` is then None.
        """
        if not hasattr(self, 'norm'):
            raise RuntimeError("masked encoding needs the final norm; build MAGEViT with out_type != 'avg_featmap'")
        B, N = ids.shape
        if token_drop_mask is None:
            all_ = self._with_class_column(token_all_mask, N)
            x = self.token_emb(self._with_class_slot(ids).masked_fill(all_, self.mask_id),
                               self._position_embeddings(grid or self.tokenize(ids)[1]))
            for block in self.blocks:
                x = block(x)
            return MAGEMaskedOutput(self.norm(x), None, all_)
        drop = self._with_class_column(token_drop_mask, N)
        all_ = self._with_class_column(token_all_mask, N) | drop
        if not (drop <= all_).all():
            raise ValueError('dropped positions must be a subset of masked positions')
        kept = (~drop).sum(1)
        if (kept != kept[0]).any():
            raise ValueError(f'every sample must keep the same number of tokens; got {kept.tolist()}')
        input_ids = self._with_class_slot(ids).masked_fill(all_, self.mask_id)
        x = self.token_emb(input_ids, self._position_embeddings(grid or self.tokenize(ids)[1]))
        x = x[~drop].reshape(B, int(kept[0]), -1)
        for block in self.blocks:
            x = block(x)
        return MAGEMaskedOutput(self.norm(x), drop, all_)

    # ------------------------------------------------------------- forward
    def forward(self,
                x: torch.Tensor,
                mask: Union[None, bool, Tuple[torch.Tensor, torch.Tensor]] = None
                ) -> Union[Tuple[torch.Tensor, ...], MAGEMaskedOutput]:
        ids, grid = self.tokenize(x)
        if mask is True:
            drop, all_ = self.sample_masks(ids.shape[0], ids.shape[1], device=ids.device)
            return self.forward_masked(ids, drop, all_, grid)
        if isinstance(mask, (tuple, list)):
            return self.forward_masked(ids, mask[0], mask[1], grid)
        if mask not in (None, False):
            raise TypeError(f'mask must be None, True or a (drop, all) pair; got {type(mask).__name__}')

        x = self.token_emb(self._with_class_slot(ids), self._position_embeddings(grid))
        outs = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self.out_indices:
                outs.append(self._format_output(x, grid))
        return tuple(outs)

    def _format_output(self, x: torch.Tensor, grid: Tuple[int, int]) -> torch.Tensor:
        if self.out_type == 'avg_featmap':
            return self.fc_norm(x[:, 1:].mean(dim=1))
        x = self.norm(x)
        if self.out_type == 'raw':
            return x
        if self.out_type == 'cls_token':
            return x[:, 0]
        B, _, C = x.shape
        return x[:, 1:].reshape(B, grid[0], grid[1], C).permute(0, 3, 1, 2).contiguous()
