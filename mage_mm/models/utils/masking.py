"""MAGE's variable masking: one ratio per iteration from a truncated Gaussian."""
import math
from typing import Tuple

import numpy as np
import torch


class TruncatedGaussianRatio:
    """Masking-ratio sampler ``N(mu, std)`` truncated to ``[min_ratio, max_ratio]``.

    Draws with numpy's global RNG like the official code (``scipy.stats.truncnorm``),
    so mmengine's ``randomness`` seed makes it reproducible. Defaults give the
    official distribution: mean 0.694, std 0.129, support [0.5, 1].

    Args:
        min_ratio (float): Lower bound. Defaults to 0.5.
        max_ratio (float): Upper bound. Defaults to 1.0.
        mu (float): Mean before truncation. Defaults to 0.55.
        std (float): Std before truncation. Defaults to 0.25.
    """

    def __init__(self,
                 min_ratio: float = 0.5,
                 max_ratio: float = 1.0,
                 mu: float = 0.55,
                 std: float = 0.25) -> None:
        if not 0.0 <= min_ratio <= max_ratio <= 1.0:
            raise ValueError(f'need 0 <= min_ratio <= max_ratio <= 1, got {min_ratio}, {max_ratio}')
        self.min_ratio, self.max_ratio, self.mu, self.std = min_ratio, max_ratio, mu, std
        self._dist = None

    @property
    def dist(self):
        """The frozen ``scipy.stats.truncnorm``, made on first use.

        scipy.stats is imported only here: every MAGEViT holds a sampler, but only masked training draws
        from it, and the import costs 21 MB of RSS (measured) in processes that never do (features,
        generation, tokenising). Making the distribution draws nothing from the RNG.
        """
        if self._dist is None:
            from scipy import stats
            lo, hi = (self.min_ratio - self.mu) / self.std, (self.max_ratio - self.mu) / self.std
            self._dist = stats.truncnorm(lo, hi, loc=self.mu, scale=self.std)
        return self._dist

    def sample(self, size=None):
        return self.dist.rvs(size) if size is not None else float(self.dist.rvs(1)[0])

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(min_ratio={self.min_ratio}, max_ratio={self.max_ratio}, '
                f'mu={self.mu}, std={self.std})')


def random_token_masks(batch_size: int,
                       num_tokens: int,
                       num_masked: int,
                       num_dropped: int,
                       device=None,
                       generator: torch.Generator = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per-sample random masks with exact counts; the dropped set is a subset of the masked set.

    Uniform noise per position; the ``num_masked`` smallest are masked and the
    ``num_dropped`` smallest of those also dropped (the official rule). Ranks
    instead of value cut-offs make the counts exact even with ties, so the
    official "re-draw on ties" loop is not needed.

    Returns:
        tuple[Tensor, Tensor]: ``token_drop_mask`` and ``token_all_mask``, bool
        of shape (B, num_tokens), image positions only (no class column).
    """
    if not 0 <= num_dropped <= num_masked <= num_tokens:
        raise ValueError(f'need 0 <= dropped ({num_dropped}) <= masked ({num_masked}) '
                         f'<= tokens ({num_tokens})')
    noise = torch.rand(batch_size, num_tokens, device=device, generator=generator)
    ranks = noise.argsort(dim=1).argsort(dim=1)
    return ranks < num_dropped, ranks < num_masked


def mask_counts(num_tokens: int, ratio: float, min_ratio: float) -> Tuple[int, int]:
    """Official counts: ``(ceil(N * ratio), ceil(N * min_ratio))`` = (masked, dropped)."""
    return int(np.ceil(num_tokens * ratio)), int(math.ceil(num_tokens * min_ratio))
