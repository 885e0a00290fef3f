"""MaskGIT-architecture VQGAN used by MAGE as its frozen tokenizer.

Parameter names equal the official ``vqgan_jax_strongaug.ckpt`` layout
(``encoder.down.{i}.block.{j}...``, ``quantize.embedding.weight``).
"""
import copy
from typing import Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS

from ...utils.allocator import release_free_heap
from ..utils.pretrained import StrictPretrainedMixin  # a Pretrained init_cfg loads strictly

#: key under which a MAGEVQGAN records its architecture in its state dict's ``_metadata`` entry (plain data:
#: read back with ``weights_only=True``, so a checkpoint names its tokenizer without any config text to evaluate)
ARCH_METADATA_KEY = 'mage_mm_tokenizer_arch'


def _record_arch(module: nn.Module, state_dict: dict, prefix: str, local_metadata: dict) -> None:
    # state-dict post hook: every state dict of a model holding a MAGEVQGAN (Runner checkpoints under
    # 'tokenizer.' / 'backbone.tokenizer.', plain exports) carries the architecture as data
    name = next((n for n, a in type(module).arch_zoo.items() if a == module.arch), None)
    local_metadata[ARCH_METADATA_KEY] = name or {k: (list(v) if isinstance(v, tuple) else v)
                                                 for k, v in module.arch.items()}


def _no_autograd() -> bool:
    # in-place activations and adds only where autograd records nothing (encode/decode under no_grad or
    # inference_mode): there they give the same values bit for bit and hold one activation less at a time
    return not torch.is_grad_enabled()


def _group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=32, num_channels=channels, eps=1e-6, affine=True)


class ResBlock(nn.Module):
    """GN → SiLU → conv3×3 → GN → SiLU → dropout → conv3×3, bias-free convs.

    When the width changes, the official block applies its 1×1 ``nin_shortcut``
    (out×out) to the *residual branch output* and returns ``h + conv1x1(h)``;
    the block input does not reach the output. Kept for weight compatibility.
    """

    def __init__(self, in_channels: int, out_channels: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.norm1 = _group_norm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.norm2 = _group_norm(out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        if in_channels != out_channels:
            self.nin_shortcut = nn.Conv2d(out_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _no_autograd():
            return self._forward_no_grad(x)
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        if self.in_channels != self.out_channels:
            return h + self.nin_shortcut(h)
        return x + h

    def _forward_no_grad(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` without autograd: the same operations, the same bits, less memory at once.

        Each SiLU overwrites the fresh GroupNorm output it reads, the conv1 output is freed before conv2
        runs, and the residual is added into the fresh conv2 output (``x + h`` and ``h + x`` are the same
        IEEE sums). At the official VQGAN's 256² level (128 channels) this holds four activations at a time
        instead of five (the convolution itself needs its output and one working buffer): about 134 MB less
        per four images (README "Performance", memory).
        """
        h = self.conv1(F.silu(self.norm1(x), inplace=True))
        h = F.silu(self.norm2(h), inplace=True)  # rebinding `h` frees the conv1 output before conv2 runs
        h = self.conv2(self.dropout(h))
        if self.in_channels != self.out_channels:
            short = self.nin_shortcut(h)
            return h.add_(short) if short.dtype == h.dtype else h + short
        # in place only where the out-of-place sum would have h's dtype (autocast may mix fp32 and bf16)
        return h.add_(x) if torch.result_type(x, h) == h.dtype else x + h


class Upsample(nn.Module):
    """Nearest ×2 then conv3×3 (with bias)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode='nearest'))


class _Level(nn.Module):
    """One resolution level; a plain container so keys read ``down.{i}.block.{j}``."""

    def __init__(self, blocks: Sequence[nn.Module], upsample: Optional[nn.Module] = None) -> None:
        super().__init__()
        self.block = nn.ModuleList(blocks)
        if upsample is not None:
            self.upsample = upsample


class _Mid(nn.Module):

    def __init__(self, channels: int, dropout: float) -> None:
        super().__init__()
        self.block_1 = ResBlock(channels, channels, dropout)
        self.block_2 = ResBlock(channels, channels, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block_2(self.block_1(x))


class Encoder(nn.Module):
    """Image (B, 3, H, W) in [0, 1] → latent (B, z_channels, H/f, W/f)."""

    def __init__(self, ch: int, ch_mult: Sequence[int], num_res_blocks: int, z_channels: int,
                 in_channels: int = 3, dropout: float = 0.0) -> None:
        super().__init__()
        self.conv_in = nn.Conv2d(in_channels, ch, 3, padding=1, bias=False)
        in_mult = (1, ) + tuple(ch_mult)
        self.down = nn.ModuleList()
        for i, mult in enumerate(ch_mult):
            block_in, block_out = ch * in_mult[i], ch * mult
            blocks = [ResBlock(block_in if j == 0 else block_out, block_out, dropout)
                      for j in range(num_res_blocks)]
            self.down.append(_Level(blocks))
        block_in = ch * ch_mult[-1]
        self.mid = _Mid(block_in, dropout)
        self.norm_out = _group_norm(block_in)
        self.conv_out = nn.Conv2d(block_in, z_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for i, level in enumerate(self.down):
            for block in level.block:
                h = block(h)
            if i != len(self.down) - 1:
                h = F.avg_pool2d(h, kernel_size=2, stride=2)
        h = self.mid(h)
        return self.conv_out(F.silu(self.norm_out(h), inplace=_no_autograd()))


class Decoder(nn.Module):
    """Latent (B, z_channels, h, w) → image (B, 3, h·f, w·f), meant to lie in [0, 1]."""

    def __init__(self, ch: int, ch_mult: Sequence[int], num_res_blocks: int, z_channels: int,
                 out_channels: int = 3, dropout: float = 0.0) -> None:
        super().__init__()
        block_in = ch * ch_mult[-1]
        self.conv_in = nn.Conv2d(z_channels, block_in, 3, padding=1)
        self.mid = _Mid(block_in, dropout)
        levels = []
        for i in reversed(range(len(ch_mult))):
            block_out = ch * ch_mult[i]
            blocks = []
            for _ in range(num_res_blocks):
                blocks.append(ResBlock(block_in, block_out, dropout))
                block_in = block_out
            levels.insert(0, _Level(blocks, Upsample(block_in) if i != 0 else None))
        # stored as up.0 … up.{L-1}, executed from the deepest level down to up.0
        self.up = nn.ModuleList(levels)
        self.norm_out = _group_norm(block_in)
        self.conv_out = nn.Conv2d(block_in, out_channels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.conv_in(z))
        for i in reversed(range(len(self.up))):
            for block in self.up[i].block:
                h = block(h)
            if i != 0:
                h = self.up[i].upsample(h)
        # without autograd the SiLU overwrites the fresh GroupNorm output (the same values, one 256² map less)
        return self.conv_out(F.silu(self.norm_out(h), inplace=_no_autograd()))


class VectorQuantizer(nn.Module):
    """Nearest-code quantiser (squared Euclidean, raw codebook, legacy loss order).

    Args:
        num_codes (int): Codebook size.
        code_dim (int): Code width.
        beta (float): Commitment weight. Defaults to 0.25.
    """

    def __init__(self, num_codes: int, code_dim: int, beta: float = 0.25) -> None:
        super().__init__()
        self.num_codes, self.code_dim, self.beta = num_codes, code_dim, beta
        self.embedding = nn.Embedding(num_codes, code_dim)
        nn.init.uniform_(self.embedding.weight, -1.0 / num_codes, 1.0 / num_codes)

    def nearest_codes(self, z: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) latent → (B, h·w) code ids, row-major over (h, w)."""
        B, C, h, w = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, C)
        codebook = self.embedding.weight
        dist = (flat.pow(2).sum(1, keepdim=True) + codebook.pow(2).sum(1)
                - 2 * flat @ codebook.t())
        return dist.argmin(dim=1).view(B, h * w)

    def lookup(self, ids: torch.Tensor, grid: Tuple[int, int]) -> torch.Tensor:
        """(B, h·w) ids → (B, C, h, w) code vectors."""
        B = ids.shape[0]
        return self.embedding(ids).view(B, grid[0], grid[1], self.code_dim).permute(0, 3, 1, 2).contiguous()

    def forward(self, z: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        ids = self.nearest_codes(z)
        z_q = self.lookup(ids, z.shape[-2:])
        # legacy order: codebook term first, commitment term weighted by beta
        loss = torch.mean((z_q.detach() - z)**2) + self.beta * torch.mean((z_q - z.detach())**2)
        z_q = z + (z_q - z).detach()  # straight-through
        return z_q, loss, ids


@MODELS.register_module()
class MAGEVQGAN(StrictPretrainedMixin, BaseModule):
    """MaskGIT-architecture VQGAN tokenizer of MAGE.

    Encoder without attention (bias-free convs, GroupNorm 32/eps 1e-6, SiLU,
    avg-pool downsampling), a raw-codebook nearest-neighbour quantiser and a
    decoder with nearest-upsample + conv. Input images are RGB in ``[0, 1]``.

    Args:
        arch (str | dict): ``'official'`` (ch 128, ch_mult (1, 1, 2, 2, 4),
            2 res blocks, 256-d latent, 1024 codes: the released
            ``vqgan_jax_strongaug``), ``'parity-tiny'`` (ch 32, (1, 1, 2), 1
            block, 256-d, 1024 codes: the parity dump's), ``'tiny'`` (ch 32,
            (1, 2, 2), 1 block, 64-d, 256 codes: CPU demos), or a dict with
            keys ``ch, ch_mult, num_res_blocks, z_channels, num_codes``.
            Defaults to ``'official'``.
        dropout (float): Dropout inside res blocks. Defaults to 0.
        beta (float): Commitment-loss weight. Defaults to 0.25.
        frozen (bool): Freeze all parameters and keep the module in eval mode
            (MAGE's tokenizer is never trained). Defaults to True.
        autocast_encode (bool): Let an enclosing autocast (bf16/fp16) run
            :meth:`encode` too. Defaults to False: encoding runs in exact fp32
            whatever the precision switch, so token ids do not change.
        init_cfg (dict, optional): e.g. ``dict(type='Pretrained',
            checkpoint='vqgan.pth')`` for a converted tokenizer checkpoint.
    """

    arch_zoo: Dict[str, dict] = {
        'official': dict(ch=128, ch_mult=(1, 1, 2, 2, 4), num_res_blocks=2, z_channels=256, num_codes=1024),
        'parity-tiny': dict(ch=32, ch_mult=(1, 1, 2), num_res_blocks=1, z_channels=256, num_codes=1024),
        'tiny': dict(ch=32, ch_mult=(1, 2, 2), num_res_blocks=1, z_channels=64, num_codes=256),
    }

    def __init__(self,
                 arch: Union[str, dict] = 'official',
                 dropout: float = 0.0,
                 beta: float = 0.25,
                 frozen: bool = True,
                 autocast_encode: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if isinstance(arch, str):
            if arch not in self.arch_zoo:
                raise KeyError(f'unknown MAGEVQGAN arch {arch!r}; choose from {sorted(self.arch_zoo)} or pass a dict')
            arch = self.arch_zoo[arch]
        arch = copy.deepcopy(dict(arch))
        missing = {'ch', 'ch_mult', 'num_res_blocks', 'z_channels', 'num_codes'} - set(arch)
        if missing:
            raise KeyError(f'MAGEVQGAN arch dict is missing {sorted(missing)}')
        self.arch = arch
        ch, ch_mult, nrb, z = arch['ch'], tuple(arch['ch_mult']), arch['num_res_blocks'], arch['z_channels']
        self.encoder = Encoder(ch, ch_mult, nrb, z, dropout=dropout)
        self.decoder = Decoder(ch, ch_mult, nrb, z, dropout=dropout)
        self.quantize = VectorQuantizer(arch['num_codes'], z, beta=beta)
        self.downsample_factor = 2**(len(ch_mult) - 1)
        self.register_state_dict_post_hook(_record_arch)
        self.frozen = frozen
        self.autocast_encode = autocast_encode
        if frozen:
            self.requires_grad_(False)
            self.eval()

    @property
    def num_codes(self) -> int:
        return self.quantize.num_codes

    def train(self, mode: bool = True) -> 'MAGEVQGAN':
        # a frozen tokenizer stays in eval mode whatever the runner asks
        return super().train(False if self.frozen else mode)

    def token_grid(self, height: int, width: int) -> Tuple[int, int]:
        f = self.downsample_factor
        if height % f or width % f:
            raise ValueError(f'MAGEVQGAN needs image sizes that are multiples of its downsampling factor '
                             f'{f}; got {height}x{width}')
        return height // f, width // f

    def _check_images(self, images: torch.Tensor) -> None:
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f'MAGEVQGAN expects RGB images of shape (B, 3, H, W); got {tuple(images.shape)}')
        if not images.is_floating_point():
            raise TypeError(f'MAGEVQGAN expects float images in [0, 1]; got dtype {images.dtype}')
        self.token_grid(*images.shape[-2:])

    def _encoder_layout(self, channels_last: bool) -> None:
        if self.__dict__.get('_encoder_channels_last', False) != channels_last:
            self.encoder.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
            self._encoder_channels_last = channels_last

    def release_encoder(self) -> None:
        """Free the encoder for decode-only use (generation): 95 MB of fp32 weights in the official architecture.

        :meth:`encode` then raises; the state dict no longer has ``encoder.*`` keys.
        """
        self.encoder = None

    def encode_latent(self, images: torch.Tensor) -> torch.Tensor:
        """Continuous encoder output (B, C, h, w)."""
        if self.encoder is None:
            raise RuntimeError('this MAGEVQGAN released its encoder (release_encoder(), decode-only use); '
                               'build the model again to encode images')
        self._check_images(images)
        return self.encoder(images)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] (B, 3, H, W) → token ids (B, H/f · W/f), row-major.

        fp32 under any autocast unless ``autocast_encode`` (ids stay exact).
        """
        low = torch.is_autocast_enabled(images.device.type)
        if images.device.type == 'cpu' and _no_autograd():
            # the encoder's 256² activations are fresh mmaps (above glibc's mmap threshold) stacked on the heap
            # a training step leaves free (its activations and gradients): returning that heap first keeps the
            # fp32 ViT-B train step's peak below the official one (README "Performance", memory; MAGE_MM_TRIM=0
            # keeps the heap, a little faster)
            release_free_heap()
        if self.encoder is not None:
            # tokenising in low precision (autocast_encode) runs the encoder channels-last, the layout oneDNN's
            # bf16 / cuDNN's fp16 convolutions want; fp32 tokenising keeps the contiguous layout (exact ids)
            self._encoder_layout(self.autocast_encode and low)
        if self.autocast_encode or not low:
            return self.quantize.nearest_codes(self.encode_latent(images))
        with torch.autocast(device_type=images.device.type, enabled=False):
            return self.quantize.nearest_codes(self.encode_latent(images.float()))

    def decode_latent(self, z_q: torch.Tensor) -> torch.Tensor:
        """Quantised latent (B, C, h, w) → raw decoder output (not clamped)."""
        return self.decoder(z_q)

    def ids_to_latent(self, ids: torch.Tensor, grid: Optional[Tuple[int, int]] = None) -> torch.Tensor:
        if ids.dim() != 2:
            raise ValueError(f'token ids must be (B, N); got {tuple(ids.shape)}')
        if grid is None:
            side = int(round(ids.shape[1]**0.5))
            if side * side != ids.shape[1]:
                raise ValueError(f'{ids.shape[1]} tokens do not form a square grid; pass grid=(h, w)')
            grid = (side, side)
        if ids.numel() and (ids.min() < 0 or ids.max() >= self.num_codes):
            raise ValueError(f'token ids must lie in [0, {self.num_codes}); got range '
                             f'[{int(ids.min())}, {int(ids.max())}]')
        return self.quantize.lookup(ids, grid)

    def decode(self, ids: torch.Tensor, grid: Optional[Tuple[int, int]] = None, clamp: bool = True) -> torch.Tensor:
        """Token ids (B, N) → images (B, 3, H, W), clamped to [0, 1] unless ``clamp=False``."""
        out = self.decode_latent(self.ids_to_latent(ids, grid))
        return out.clamp(0.0, 1.0) if clamp else out

    def forward(self, images: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reconstruction pass for tokenizer training: ``(recon, vq_loss, ids)``."""
        z = self.encode_latent(images)
        z_q, vq_loss, ids = self.quantize(z)
        return self.decode_latent(z_q), vq_loss, ids
