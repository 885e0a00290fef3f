"""MAGE's iterative decoding (MaskGIT-style), written once for generation and editing.

Pure torch/numpy: the network is a callable ``logits_fn(ids) -> (B, 1 + N, V)``
(one full MAGE pass, :meth:`MAGE.predict_logits` with nothing dropped), so the
loop can be tested against the official trajectory without mmagic.

The official rule (``gen_img_uncond.py`` of LTH14/mage), reproduced exactly by
the defaults of :func:`iterative_decode`:

1. every image position starts as ``[MASK]``;
2. each step ``t``: logits of the code columns; draw a candidate map from
   ``Categorical(logits)``; already fixed positions keep their ids;
3. ``ratio = (t + 1) / T``; keep-masked count ``L = floor(N0 * cos(pi/2 * ratio))``
   clipped to ``max(1, min(#masked - 1, L))`` (the first image's count is used
   for the whole batch);
4. confidence = ``log softmax-prob`` of the drawn id for masked positions,
   ``+inf`` for fixed ones, plus Gumbel noise scaled by ``temp * (1 - ratio)``;
   every position whose confidence is ``<=`` the L-th smallest goes back to
   ``[MASK]``;
5. the last step's full candidate map is the result.

Draws come from a :class:`DecodingSampler`, so the same loop runs with the
official RNG order (:class:`BatchSampler`), per-image seeds
(:class:`PerImageSampler`) or recorded draws (:class:`ReplaySampler`).

The settings of a decoding run are one :class:`DecodingOptions` object, checked
once when it is made; :func:`iterative_decode`, :class:`MAGEGenerator`
(config, Python API, mmagic inferencer ``sample_kwargs``), ``tools/generate.py``
and ``tools/edit.py`` all build it, so a bad value fails the same way everywhere.
"""
import dataclasses
import math
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

ScheduleType = Union[str, Callable[[float], float]]


# ---------------------------------------------------------------- schedules
def _cosine(ratio: float) -> float:
    # numpy cos, as the official code (bit-identical counts)
    return float(np.cos(math.pi / 2.0 * ratio))


def _linear(ratio: float) -> float:
    return 1.0 - ratio


def _arccos(ratio: float) -> float:
    return float(np.arccos(np.clip(ratio, 0.0, 1.0)) / (math.pi / 2.0))


MASK_SCHEDULES: Dict[str, Callable[[float], float]] = dict(cosine=_cosine, linear=_linear, arccos=_arccos)


def mask_ratio(schedule: ScheduleType, ratio: float) -> float:
    """Fraction of the initial unknown tokens still masked after progress ``ratio`` in (0, 1].

    Args:
        schedule (str | callable): ``'cosine'`` (official), ``'linear'``,
            ``'arccos'``, or a function of the progress returning a fraction.
        ratio (float): ``(t + 1) / T``.
    """
    if callable(schedule):
        return float(schedule(ratio))
    if schedule not in MASK_SCHEDULES:
        raise ValueError(f'unknown mask schedule {schedule!r}; choose from {sorted(MASK_SCHEDULES)} or pass a callable')
    return MASK_SCHEDULES[schedule](ratio)


def clipped_mask_len(num_initial: int, num_masked: int, step: int, num_iter: int,
                     schedule: ScheduleType = 'cosine') -> int:
    """Official keep-masked count after ``step``: ``max(1, min(num_masked - 1, floor(N0 * ratio)))``.

    Returns 0 when nothing is masked any more (the official code never gets
    there; editing can).
    """
    if num_masked <= 0:
        return 0
    raw = int(np.floor(num_initial * mask_ratio(schedule, (step + 1) / num_iter)))
    return max(1, min(num_masked - 1, raw))


def schedule_counts(num_tokens: int, num_iter: int, schedule: ScheduleType = 'cosine') -> List[Tuple[int, int]]:
    """``(fixed this step, still masked after it)`` per step when decoding ``num_tokens`` unknowns.

    Assumes no confidence ties (ties can only mask more). The decoded map is
    the last step's full candidate map, so the one token that the clipped
    schedule leaves masked after the last step is filled too.
    """
    _check_steps(num_iter)
    counts, masked = [], num_tokens
    for step in range(num_iter):
        keep = clipped_mask_len(num_tokens, masked, step, num_iter, schedule)
        counts.append((masked - keep, keep))
        masked = keep
    return counts


def _check_steps(num_iter: int) -> None:
    if isinstance(num_iter, bool) or not isinstance(num_iter, (int, np.integer)) or num_iter < 1:
        raise ValueError(f'decoding option num_iter (the number of decoding steps) must be an integer >= 1; '
                         f'got {num_iter!r}')


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


SEED_MODES = ('per_image', 'batch')
SCHEDULE_BASES = ('all', 'unknown')


@dataclasses.dataclass(frozen=True)
class DecodingOptions:
    """The settings of one iterative decoding run, validated once, when the object is made.

    The defaults are the official ``gen_img_uncond.py`` settings of the README
    command (20 steps, choice temperature 6.0, cosine schedule, sampling among
    all codes at temperature 1).

    Args:
        num_iter (int): Decoding steps T (>= 1). Defaults to 20.
        choice_temperature (float): Gumbel scale of the confidences at step 0
            (>= 0), annealed linearly as ``temp * (1 - (t + 1) / T)``; 0 keeps
            the most confident candidates deterministically. Defaults to 6.0.
        schedule (str | callable): Mask schedule: ``'cosine'`` (official),
            ``'linear'``, ``'arccos'``, or a function of the progress in (0, 1]
            returning the fraction still masked. Defaults to ``'cosine'``.
        sampling_temperature (float): Candidate logits are divided by it (> 0).
            Defaults to 1.0.
        top_k (int, optional): ``None`` samples each candidate among all codes
            (official); an integer ``k >= 1`` among the ``k`` most likely codes
            only (``k`` at or above the codebook size is the same as all codes).
            ``0`` is refused rather than read as "all": there is one spelling
            for "all codes", ``None``. Defaults to None.
        per_sample_mask_len (bool): Each image gets its own keep-masked count;
            the official code uses the first image's for the whole batch.
            Defaults to False.
        schedule_base (str): ``'all'``: the schedule counts from the number of
            tokens N (official, always fully masked at the start);
            ``'unknown'``: from each image's initial number of unknown tokens
            (editing a small region still runs the whole schedule).
            Defaults to ``'all'``.
        seed_mode (str): How per-image seeds become random streams
            (:func:`build_sampler`): ``'per_image'`` (an image does not depend on
            its batch) or ``'batch'`` (the official RNG order, seeded with the
            first seed). :func:`iterative_decode` itself takes the sampler.
            Defaults to ``'per_image'``.

    Raises:
        ValueError: A value outside the ranges above; the message names the
            option and the value.
    """
    num_iter: int = 20
    choice_temperature: float = 6.0
    schedule: Union[str, Callable[[float], float]] = 'cosine'
    sampling_temperature: float = 1.0
    top_k: Optional[int] = None
    per_sample_mask_len: bool = False
    schedule_base: str = 'all'
    seed_mode: str = 'per_image'

    def __post_init__(self) -> None:
        _check_steps(self.num_iter)
        if not _is_number(self.choice_temperature) or not math.isfinite(self.choice_temperature) \
                or self.choice_temperature < 0:
            raise ValueError(f'decoding option choice_temperature must be a finite number >= 0; '
                             f'got {self.choice_temperature!r}')
        if not _is_number(self.sampling_temperature) or not math.isfinite(self.sampling_temperature) \
                or self.sampling_temperature <= 0:
            raise ValueError(f'decoding option sampling_temperature must be a finite number > 0; '
                             f'got {self.sampling_temperature!r}')
        if self.top_k is not None and (isinstance(self.top_k, bool) or not isinstance(self.top_k, (int, np.integer))
                                       or self.top_k < 1):
            raise ValueError(f'decoding option top_k must be None (all codes) or an integer >= 1; '
                             f'got {self.top_k!r}')
        if not callable(self.schedule):
            if self.schedule not in MASK_SCHEDULES:
                raise ValueError(f'decoding option schedule: unknown mask schedule {self.schedule!r}; choose from '
                                 f'{sorted(MASK_SCHEDULES)} or pass a callable')
        if not isinstance(self.per_sample_mask_len, (bool, np.bool_)):
            raise ValueError(f'decoding option per_sample_mask_len must be True or False; '
                             f'got {self.per_sample_mask_len!r}')
        if self.schedule_base not in SCHEDULE_BASES:
            raise ValueError(f'decoding option schedule_base must be one of {SCHEDULE_BASES}; '
                             f'got {self.schedule_base!r}')
        if self.seed_mode not in SEED_MODES:
            raise ValueError(f'decoding option seed_mode must be one of {SEED_MODES}; got {self.seed_mode!r}')

    @classmethod
    def names(cls) -> Tuple[str, ...]:
        """The option names, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(cls))

    def replace(self, **overrides: Any) -> 'DecodingOptions':
        """A copy with ``overrides`` applied, validated like a new object.

        Every given value is used as is (``top_k=None`` selects all codes);
        callers drop the options they were not given (e.g. argparse's None).

        Raises:
            ValueError: An unknown option name (the message lists the known
                ones) or a bad value.
        """
        unknown = sorted(set(overrides) - set(self.names()))
        if unknown:
            raise ValueError(f'unknown decoding option(s) {unknown}; known: {list(self.names())}')
        return dataclasses.replace(self, **overrides) if overrides else self

    @classmethod
    def from_dict(cls, options: Optional[Mapping[str, Any]] = None) -> 'DecodingOptions':
        """Defaults updated with ``options`` (same rules as :meth:`replace`)."""
        return cls().replace(**dict(options or {}))

    def to_dict(self) -> Dict[str, Any]:
        """The options as a plain dict (``schedule`` stays a callable where it is one)."""
        return {name: getattr(self, name) for name in self.names()}


# ---------------------------------------------------------------- samplers
class DecodingSampler:
    """Source of the two random draws of every step.

    ``categorical(logits)`` draws one id per position from
    ``Categorical(logits=logits)`` (logits (B, N, K)); ``gumbel(shape)``
    returns standard Gumbel noise as float64 (B, N), like ``np.random.gumbel``.
    """

    def categorical(self, logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def gumbel(self, shape: Tuple[int, int], device: torch.device) -> torch.Tensor:
        raise NotImplementedError


def _multinomial(logits: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    # exactly what Categorical(logits=logits).sample() does, with an explicit generator
    probs = torch.distributions.Categorical(logits=logits, validate_args=False).probs
    flat = probs.reshape(-1, probs.shape[-1])
    return torch.multinomial(flat, 1, True, generator=generator).T.reshape(probs.shape[:-1])


def _generator(seed: int, device: torch.device) -> torch.Generator:
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed))
    return gen


class BatchSampler(DecodingSampler):
    """One torch and one numpy stream for the whole batch, seeded with ``seed``.

    Reproduces the official ``gen_image(bsz, seed)``: ``torch.manual_seed(seed)``
    and ``np.random.seed(seed)``, then per step the categorical draw of the
    whole batch followed by ``np.random.gumbel(size=(B, N))`` — without
    touching the global RNG state. Images depend on the batch composition.
    """

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)
        self._torch: Optional[torch.Generator] = None
        self._numpy = np.random.RandomState(self.seed)

    def categorical(self, logits: torch.Tensor) -> torch.Tensor:
        if self._torch is None:
            self._torch = _generator(self.seed, logits.device)
        return _multinomial(logits, self._torch)

    def gumbel(self, shape: Tuple[int, int], device: torch.device) -> torch.Tensor:
        return torch.from_numpy(self._numpy.gumbel(size=shape)).to(device)


class PerImageSampler(DecodingSampler):
    """One torch and one numpy stream per image, seeded with that image's seed.

    Image ``i`` is the same whatever the batch size, its position in the batch
    or the number of processes; with batch size 1 this is the official
    ``gen_image(1, seed_i)``.
    """

    def __init__(self, seeds: Sequence[int]) -> None:
        self.seeds = [int(s) for s in seeds]
        if not self.seeds:
            raise ValueError('PerImageSampler needs at least one seed')
        self._torch: Optional[List[torch.Generator]] = None
        self._numpy = [np.random.RandomState(s) for s in self.seeds]

    def _check(self, batch: int) -> None:
        if batch != len(self.seeds):
            raise ValueError(f'{len(self.seeds)} seeds for a batch of {batch} images')

    def categorical(self, logits: torch.Tensor) -> torch.Tensor:
        self._check(logits.shape[0])
        if self._torch is None:
            self._torch = [_generator(s, logits.device) for s in self.seeds]
        return torch.stack([_multinomial(logits[i], g) for i, g in enumerate(self._torch)])

    def gumbel(self, shape: Tuple[int, int], device: torch.device) -> torch.Tensor:
        self._check(shape[0])
        noise = np.stack([rs.gumbel(size=shape[1:]) for rs in self._numpy])
        return torch.from_numpy(noise).to(device)


class ReplaySampler(DecodingSampler):
    """Replays recorded draws: ``categorical`` (T, B, N) ids and ``gumbel`` (T, B, N) float64."""

    def __init__(self, categorical: torch.Tensor, gumbel: torch.Tensor) -> None:
        if categorical.shape != gumbel.shape:
            raise ValueError(f'recorded draws disagree: categorical {tuple(categorical.shape)} vs '
                             f'gumbel {tuple(gumbel.shape)}')
        self._ids, self._noise = categorical, gumbel
        self._cat_step = self._gum_step = 0

    def categorical(self, logits: torch.Tensor) -> torch.Tensor:
        if self._cat_step >= self._ids.shape[0]:
            raise IndexError(f'only {self._ids.shape[0]} recorded steps')
        ids = self._ids[self._cat_step].to(logits.device)
        self._cat_step += 1
        if ids.shape != logits.shape[:-1]:
            raise ValueError(f'recorded ids {tuple(ids.shape)} do not match logits {tuple(logits.shape)}')
        return ids

    def gumbel(self, shape: Tuple[int, int], device: torch.device) -> torch.Tensor:
        noise = self._noise[self._gum_step].to(device=device, dtype=torch.float64)
        self._gum_step += 1
        if tuple(noise.shape) != tuple(shape):
            raise ValueError(f'recorded Gumbel draws {tuple(noise.shape)} do not match {tuple(shape)}')
        return noise


def build_sampler(seeds: Sequence[int], seed_mode: str = 'per_image') -> DecodingSampler:
    """``'per_image'`` → :class:`PerImageSampler`; ``'batch'`` → :class:`BatchSampler` seeded with ``seeds[0]``."""
    if seed_mode == 'per_image':
        return PerImageSampler(seeds)
    if seed_mode == 'batch':
        return BatchSampler(int(seeds[0]))
    raise ValueError(f"seed_mode must be 'per_image' or 'batch'; got {seed_mode!r}")


# ---------------------------------------------------------------- the loop
class DecodeResult(NamedTuple):
    """Output of :func:`iterative_decode`.

    Attributes:
        token_ids (Tensor): (B, N) final ids, all in ``[0, codebook_size)``.
        step_input_ids (Tensor, optional): (T, B, N) the map fed to the network
            at every step (``[MASK]`` where unknown), when recorded.
    """
    token_ids: torch.Tensor
    step_input_ids: Optional[torch.Tensor] = None


def _filter_top_k(logits: torch.Tensor, top_k: Optional[int]) -> torch.Tensor:
    # None: all codes; k >= 1 validated by DecodingOptions
    if top_k is None or top_k >= logits.shape[-1]:
        return logits
    kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float('-inf'))


def iterative_decode(logits_fn: Callable[[torch.Tensor], torch.Tensor],
                     init_ids: torch.Tensor,
                     *,
                     mask_id: int,
                     codebook_size: int,
                     sampler: DecodingSampler,
                     options: Optional[DecodingOptions] = None,
                     record_steps: bool = False,
                     callback: Optional[Callable[[int, torch.Tensor], None]] = None) -> DecodeResult:
    """Decode the ``[MASK]`` positions of ``init_ids`` (B, N) in ``options.num_iter`` steps.

    Args:
        logits_fn (callable): ids (B, N) with ``mask_id`` at unknown positions
            → logits (B, 1 + N, V) (column 0 is the class slot).
        init_ids (Tensor): (B, N) starting map; ``mask_id`` marks unknowns,
            other entries are fixed codes (editing). All ``mask_id`` for
            unconditional generation.
        mask_id (int): The ``[MASK]`` id.
        codebook_size (int): Only the first ``codebook_size`` logit columns
            are candidates.
        sampler (DecodingSampler): Source of the categorical and Gumbel draws
            (``options.seed_mode`` is not used here: the sampler is given).
        options (DecodingOptions, optional): Steps, temperatures, schedule,
            top-k... Defaults to ``DecodingOptions()`` (the official settings).
        record_steps (bool): Return every step's input map. Defaults to False.
        callback (callable, optional): Called as ``callback(step, input_ids)``.

    Returns:
        DecodeResult: final ids (and the per-step maps when recorded).
    """
    options = DecodingOptions() if options is None else options
    if not isinstance(options, DecodingOptions):
        raise TypeError(f'options must be a DecodingOptions (DecodingOptions.from_dict(...) builds one from a '
                        f'dict); got {type(options).__name__}')
    num_iter, choice_temperature, schedule = options.num_iter, options.choice_temperature, options.schedule
    sampling_temperature, top_k = options.sampling_temperature, options.top_k
    if init_ids.dim() != 2:
        raise ValueError(f'init_ids must be (B, N); got {tuple(init_ids.shape)}')
    ids = init_ids.long().clone()
    B, N = ids.shape
    known = ids != mask_id
    if known.any() and (ids[known].min() < 0 or ids[known].max() >= codebook_size):
        raise ValueError(f'fixed token ids must lie in [0, {codebook_size}) or equal the mask id {mask_id}')
    num_initial = [N] * B if options.schedule_base == 'all' else (~known).sum(1).tolist()
    steps: List[torch.Tensor] = []
    sampled = ids

    for step in range(num_iter):
        unknown = ids == mask_id
        if not unknown.any():
            break  # editing with nothing (left) to decode
        if record_steps:
            steps.append(ids.clone())
        if callback is not None:
            callback(step, ids)
        logits = logits_fn(ids)[:, 1:, :codebook_size].float()
        if sampling_temperature != 1.0:
            logits = logits / sampling_temperature
        logits = _filter_top_k(logits, top_k)
        sampled = torch.where(unknown, sampler.categorical(logits), ids)

        ratio = (step + 1) / num_iter
        probs = F.softmax(logits, dim=-1)
        selected = torch.gather(probs, -1, sampled.unsqueeze(-1)).squeeze(-1)
        selected = torch.where(unknown, selected, torch.full_like(selected, float('inf')))
        num_masked = unknown.sum(1).tolist()
        mask_len = [clipped_mask_len(num_initial[b], num_masked[b], step, num_iter, schedule) for b in range(B)]
        if not options.per_sample_mask_len:
            mask_len = [mask_len[0]] * B
        mask_len_t = torch.tensor(mask_len, device=ids.device)

        # official: log(p) in fp32 + fp32(temp * (1 - ratio) * gumbel_fp64)
        noise = (sampler.gumbel((B, N), ids.device) * (choice_temperature * (1.0 - ratio))).float()
        confidence = torch.log(selected) + noise
        sorted_conf = torch.sort(confidence, dim=-1).values
        cut_off = torch.gather(sorted_conf, 1, (mask_len_t - 1).clamp_min(0).unsqueeze(1))
        masking = (confidence <= cut_off) & (mask_len_t > 0).unsqueeze(1)
        ids = torch.where(masking, torch.full_like(sampled, mask_id), sampled)

    return DecodeResult(sampled, torch.stack(steps) if record_steps and steps else None)


# ---------------------------------------------------------------- editing
def token_mask_from_pixels(mask: torch.Tensor, grid: Tuple[int, int], dilation: int = 0) -> torch.Tensor:
    """Pixel mask (B, 1, H, W) or (B, H, W), nonzero = regenerate → token mask (B, h·w) bool.

    A token is unknown when any pixel of its cell is masked (the mask is
    dilated to whole token cells; for sizes that are not a multiple of the
    grid the cells are adaptive-pooling windows), then the unknown region
    grows by ``dilation`` cells (8-neighbourhood) to give the decoder a margin.
    """
    if mask.dim() == 3:
        mask = mask.unsqueeze(1)
    if mask.dim() != 4 or mask.shape[1] != 1:
        raise ValueError(f'pixel mask must be (B, 1, H, W) or (B, H, W); got {tuple(mask.shape)}')
    if dilation < 0:
        raise ValueError(f'dilation must be >= 0; got {dilation}')
    cells = F.adaptive_max_pool2d((mask != 0).float(), tuple(grid))
    if dilation:
        cells = F.max_pool2d(cells, kernel_size=2 * dilation + 1, stride=1, padding=dilation)
    return cells.flatten(1) > 0


def edit_mask(kind: str, height: int, width: int, box: Optional[Sequence[int]] = None, side: str = 'right',
              fraction: float = 0.5) -> torch.Tensor:
    """A (1, H, W) uint8 pixel mask (1 = regenerate) for the three editing tasks.

    Args:
        kind (str): ``'inpaint'`` (regenerate ``box``), ``'outpaint'``
            (regenerate everything outside ``box``) or ``'uncrop'`` (regenerate
            ``fraction`` of the image on ``side``).
        height (int): Image height.
        width (int): Image width.
        box (Sequence[int], optional): ``(x0, y0, x1, y1)`` pixels, end
            exclusive; defaults to the central half of the image.
        side (str): ``'left'|'right'|'top'|'bottom'`` for uncropping.
        fraction (float): Regenerated fraction for uncropping, in (0, 1).
    """
    mask = torch.zeros(1, height, width, dtype=torch.uint8)
    if kind in ('inpaint', 'outpaint'):
        if box is None:
            box = (width // 4, height // 4, width - width // 4, height - height // 4)
        x0, y0, x1, y1 = (int(v) for v in box)
        if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
            raise ValueError(f'box {tuple(box)} must satisfy 0 <= x0 < x1 <= {width}, 0 <= y0 < y1 <= {height}')
        mask[:, y0:y1, x0:x1] = 1
        return mask if kind == 'inpaint' else 1 - mask
    if kind == 'uncrop':
        if not 0.0 < fraction < 1.0:
            raise ValueError(f'fraction must be in (0, 1); got {fraction}')
        n_w, n_h = round(width * fraction), round(height * fraction)
        region = dict(left=(slice(None), slice(0, n_w)), right=(slice(None), slice(width - n_w, None)),
                      top=(slice(0, n_h), slice(None)), bottom=(slice(height - n_h, None), slice(None)))
        if side not in region:
            raise ValueError(f"side must be one of {sorted(region)}; got {side!r}")
        rows, cols = region[side]
        mask[:, rows, cols] = 1
        return mask
    raise ValueError(f"kind must be 'inpaint', 'outpaint' or 'uncrop'; got {kind!r}")
