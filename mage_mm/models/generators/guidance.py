"""Classifier-free guidance for class-conditional MAGE decoding (pure torch).

Each decoding step of a class-conditional MAGE (:class:`MAGECond`, decoder with
a class embedding) can combine two network passes on the same token map: the
*conditional* one (the image's class) and the *unconditional* one (the null
class the model was trained with by label dropout):

    logits = uncond + s_t * (cond - uncond)

``s_t`` is the guidance scale at step ``t`` (0-based, ``T`` steps):

* ``'constant'``: ``s_t = s``;
* ``'linear'``: ``s_t = 1 + (s - 1) * (t + 1) / T``, a ramp from almost no
  guidance at the first step (where the few fixed tokens are chosen) to ``s``
  at the last (the ramp of MUSE/RCG-style samplers; RCG ramps with the fraction
  of decoded tokens, which the cosine schedule makes similar).

Identities the implementation keeps exact (no arithmetic on the logits): a step
with ``s_t = 1`` runs the conditional pass alone, a step with ``s_t = 0`` the
null-class pass alone; otherwise both passes run **batched together** (one
network call on ``2B`` maps: the B conditional rows, then the B null rows).
So ``s = 1`` (either schedule) is plain conditional sampling and ``s = 0``
with the constant schedule is unconditional sampling with the null class.
"""
from typing import Callable, Optional

import torch

GUIDANCE_SCHEDULES = ('constant', 'linear')


def check_guidance(scale: float, schedule: str = 'constant') -> None:
    """Validate a guidance scale (finite, >= 0) and schedule name.

    Raises:
        ValueError: The message names the bad value.
    """
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not (scale == scale) \
            or scale in (float('inf'), float('-inf')) or scale < 0:
        raise ValueError(f'guidance scale must be a finite number >= 0 (1 = no guidance, 0 = null class); '
                         f'got {scale!r}')
    if schedule not in GUIDANCE_SCHEDULES:
        raise ValueError(f'guidance schedule must be one of {GUIDANCE_SCHEDULES}; got {schedule!r}')


def guidance_at(scale: float, schedule: str, step: int, num_iter: int) -> float:
    """The guidance scale ``s_t`` of step ``step`` (0-based) out of ``num_iter``."""
    if schedule == 'constant':
        return float(scale)
    if schedule == 'linear':
        return 1.0 + (float(scale) - 1.0) * (step + 1) / num_iter
    raise ValueError(f'guidance schedule must be one of {GUIDANCE_SCHEDULES}; got {schedule!r}')


class GuidedLogits:
    """``logits_fn`` for :func:`iterative_decode` with classifier-free guidance.

    Use the instance as ``logits_fn`` and its :meth:`on_step` as the loop's
    ``callback`` (the loop calls it with the step index right before the
    network call of that step), so that a ramped scale knows the step.

    Args:
        network (callable): ``network(ids, labels) -> logits`` (B, 1 + N, V)
            for ids (B, N) and labels (B,).
        labels (Tensor): (B,) class ids of the images.
        null_class (int): The null class id.
        scale (float): Guidance scale ``s`` (>= 0). Defaults to 1.0 (none).
        schedule (str): ``'constant'`` or ``'linear'``. Defaults to ``'constant'``.
        num_iter (int): Decoding steps T (for the ramp). Defaults to 1.
    """

    def __init__(self, network: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], labels: torch.Tensor,
                 null_class: int, scale: float = 1.0, schedule: str = 'constant', num_iter: int = 1) -> None:
        check_guidance(scale, schedule)
        self.network = network
        self.labels = labels
        self.null = torch.full_like(labels, int(null_class))
        self.scale, self.schedule, self.num_iter = float(scale), schedule, int(num_iter)
        self.step = 0
        self.scales = []  # s_t actually used, one per network call (for tests and logs)

    def on_step(self, step: int, ids: Optional[torch.Tensor] = None) -> None:
        self.step = int(step)

    def __call__(self, ids: torch.Tensor) -> torch.Tensor:
        if len(ids) != len(self.labels):
            raise ValueError(f'{len(self.labels)} labels for a batch of {len(ids)} token maps')
        s = guidance_at(self.scale, self.schedule, self.step, self.num_iter)
        self.scales.append(s)
        if s == 1.0:
            return self.network(ids, self.labels)
        if s == 0.0:
            return self.network(ids, self.null)
        both = self.network(torch.cat([ids, ids]), torch.cat([self.labels, self.null]))
        cond, uncond = both.float().chunk(2)
        return uncond + s * (cond - uncond)


__all__ = ['GUIDANCE_SCHEDULES', 'check_guidance', 'guidance_at', 'GuidedLogits']
