"""Class-conditional MAGE generation with classifier-free guidance: :class:`MAGECondGenerator` (no mmagic import).

Like :mod:`mage_mm.models.generators.generator` this module imports no mmagic; the leaf module
:mod:`mage_mm.models.generators.mage_cond_generator` registers the class in mmagic's ``MODELS``.
"""
from copy import deepcopy
from typing import Any, List, Optional, Sequence, Union

import torch

from .decoding import build_sampler, iterative_decode
from .generator import MAGEGenerator, data_sample_cls, parse_sample_inputs
from .guidance import GuidedLogits, check_guidance

LabelsType = Union[None, int, Sequence[int], torch.Tensor]


class MAGECondGenerator(MAGEGenerator):
    """:class:`MAGEGenerator` for a class-conditional MAGE (:class:`MAGECond` checkpoints).

    The same network parts under the same names (the decoder is built with
    ``num_classes``, so ``neck.class_embed.weight`` is in its state dict): a
    ``MAGECond`` checkpoint loads with no remapping. Every image gets a class;
    each decoding step combines the conditional and the null-class passes with
    classifier-free guidance (:mod:`mage_mm.models.generators.guidance`):
    ``logits = uncond + s_t * (cond - uncond)``, ``s_t`` constant or a linear
    ramp from ~1 to ``s``; the two passes run batched together. ``s = 1`` is the
    conditional pass alone (no guidance), ``s = 0`` (constant) the null-class
    pass alone. Image ``i`` depends only on its seed and class (per-image seeds,
    whatever the batch or the number of processes).

    mmagic: ``forward(dict(num_batches=N, labels=...))`` (what
    ``Inferencers(task='conditional', ..., label=...)`` sends), or labels in
    ``sample_kwargs['labels']`` or in the data samples' ``gt_label``; an int is
    one class for all N images; no labels: classes drawn uniformly from torch's
    global RNG (mmagic's ``BaseConditionalGAN`` convention). Output data
    samples also carry ``gt_label``. ``sample_kwargs`` may set ``guidance`` and
    ``guidance_schedule`` besides the decoding options.

    Args:
        guidance (float): Default guidance scale ``s`` (>= 0). Defaults to 1.0
            (no guidance).
        guidance_schedule (str): ``'constant'`` or ``'linear'``. Defaults to
            ``'constant'``.
        **kwargs: :class:`MAGEGenerator` arguments; ``neck`` must have
            ``num_classes``.

    Raises:
        ValueError: The neck has no class count, or a bad guidance value.
    """

    def __init__(self, guidance: float = 1.0, guidance_schedule: str = 'constant', **kwargs) -> None:
        neck = kwargs.get('neck') or {}
        if isinstance(neck, dict) and neck.get('num_classes') is None:
            raise ValueError('MAGECondGenerator needs a class-conditional decoder: set model.neck.num_classes to '
                             'the class count of the MAGECond checkpoint')
        super().__init__(**kwargs)
        check_guidance(guidance, guidance_schedule)
        self.guidance, self.guidance_schedule = float(guidance), guidance_schedule

    # ------------------------------------------------------------------ classes
    @property
    def num_classes(self) -> int:
        return self.neck.class_embed.num_classes

    @property
    def null_class(self) -> int:
        return self.neck.class_embed.null_class

    def resolve_labels(self, labels: LabelsType, num: int) -> torch.Tensor:
        """Labels for ``num`` images: an int (all images), a sequence/tensor of ``num`` ids, or None (random).

        Raises:
            ValueError: Wrong count or an id outside ``0 .. num_classes - 1``.
        """
        if labels is None:
            return torch.randint(0, self.num_classes, (num, ), dtype=torch.int64)
        if isinstance(labels, int) and not isinstance(labels, bool):
            labels = [labels] * num
        labels = torch.as_tensor(labels).flatten().cpu()
        if labels.numel() == 1 and num > 1:
            labels = labels.expand(num)
        if len(labels) != num:
            raise ValueError(f'got {len(labels)} labels for {num} images')
        return self.neck.class_embed.check_labels(labels, allow_null=False, what='labels').clone()

    def _cond_logits(self, ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        all_mask = ids == self.mask_id
        all_mask = torch.cat([all_mask.new_zeros(all_mask.shape[0], 1), all_mask], dim=1)
        return self.predict_logits(ids, torch.zeros_like(all_mask), all_mask, labels=labels.to(ids.device)).float()

    # ------------------------------------------------------------- Python API
    def decode_tokens(self, init_ids: torch.Tensor, seeds: Sequence[int], editing: bool = False,
                      record_steps: bool = False, labels: LabelsType = None, guidance: Optional[float] = None,
                      guidance_schedule: Optional[str] = None, **options):
        """:meth:`MAGEGenerator.decode_tokens` with a class per image and guidance.

        ``labels=None`` decodes with the null class (unconditional; editing
        without a class), guidance then has no effect.
        """
        opts = self.decoding_options(options, editing)
        guidance = self.guidance if guidance is None else guidance
        guidance_schedule = guidance_schedule or self.guidance_schedule
        check_guidance(guidance, guidance_schedule)
        device = self.backbone.word_embeddings.device
        if labels is None:
            labels_t = torch.full((len(init_ids), ), self.null_class, dtype=torch.long)
        else:
            labels_t = self.resolve_labels(labels, len(init_ids))
        guided = GuidedLogits(self._cond_logits, labels_t.to(device), self.null_class, guidance, guidance_schedule,
                              opts.num_iter)
        sampler = build_sampler([int(s) for s in seeds], opts.seed_mode)
        with self._eval_mode():
            return iterative_decode(guided, init_ids.to(device), mask_id=self.mask_id,
                                    codebook_size=self.backbone.codebook_size, sampler=sampler, options=opts,
                                    record_steps=record_steps, callback=guided.on_step)

    def generate_tokens(self, seeds: Sequence[int], labels: LabelsType = None, **options) -> torch.Tensor:
        """Token maps (B, N) of class ``labels[i]`` for seed ``seeds[i]`` (``guidance=...`` etc. in options)."""
        init = torch.full((len(seeds), self.backbone.num_tokens), self.mask_id, dtype=torch.long)
        if labels is None:
            raise ValueError('MAGECondGenerator.generate needs labels (one class per image, or one int for all); '
                             'pass labels=None explicitly to decode_tokens for the null class')
        return self.decode_tokens(init, seeds, labels=labels, **options).token_ids

    def generate(self, seeds: Sequence[int], labels: LabelsType = None, **options) -> torch.Tensor:
        """RGB images in [0, 1] (B, 3, H, W): class ``labels[i]``, seed ``seeds[i]``."""
        return self.tokens_to_images(self.generate_tokens(seeds, labels=labels, **options))

    # ---------------------------------------------------- mmagic interface
    def forward(self, inputs: Union[dict, torch.Tensor, None] = None, data_samples: Optional[Any] = None,
                mode: Optional[str] = None) -> List[Any]:
        if isinstance(inputs, torch.Tensor) and inputs.is_floating_point() and inputs.dim() == 4:
            return self._forward_edit(inputs, data_samples)
        return self._forward_cond_sample(inputs, data_samples)

    def _forward_cond_sample(self, inputs: Union[dict, torch.Tensor, None], data_samples: Optional[Any]):
        inputs, sample_model, sample_kwargs, seeds = parse_sample_inputs(inputs, 'MAGECondGenerator')
        labels = inputs.get('labels', sample_kwargs.pop('labels', None))
        if labels is None and data_samples is not None:
            samples = data_samples if isinstance(data_samples, list) else data_samples.split()
            if samples and all('gt_label' in s for s in samples):
                labels = torch.cat([torch.as_tensor(s.gt_label).flatten() for s in samples])
        num = inputs.get('num_batches')
        if num is None:
            if seeds is not None:
                num = len(torch.as_tensor(seeds).flatten())
            elif labels is not None and not isinstance(labels, int):
                num = len(torch.as_tensor(labels).flatten())
            else:
                raise ValueError('MAGECondGenerator needs num_batches, per-image seeds (noise) or labels to sample')
        if int(num) <= 0:
            raise ValueError(f'num_batches must be > 0; got {num}')
        seeds = self._resolve_seeds(seeds, int(num))
        labels = self.resolve_labels(labels, int(num))
        options = {k: v for k, v in sample_kwargs.items() if k != 'show_progress'}
        token_ids = self.generate_tokens(seeds.tolist(), labels=labels, **options)
        fake_img = self._destruct_rgb(self.tokens_to_images(token_ids))

        gen_sample = data_sample_cls()()
        gen_sample.fake_img = fake_img
        gen_sample.noise = seeds.to(fake_img.device)
        gen_sample.latent = token_ids
        gen_sample.set_gt_label(labels.to(fake_img.device))
        gen_sample.sample_kwargs = deepcopy(inputs.get('sample_kwargs') or {})
        gen_sample.sample_model = sample_model
        return gen_sample.split(allow_nonseq_value=True)
