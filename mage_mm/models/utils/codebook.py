"""Codebook usage of a VQ tokenizer (shared by the tokenizer trainer and :class:`VQReconstructionMetric`)."""
from typing import Dict

import torch


def codebook_stats(counts: torch.Tensor) -> Dict[str, float]:
    """Usage statistics of a code histogram (K,): used codes, usage fraction, perplexity."""
    counts = counts.double()
    total = counts.sum()
    if total <= 0:
        return dict(used_codes=0.0, usage=0.0, perplexity=0.0)
    p = counts / total
    entropy = -(p[p > 0] * p[p > 0].log()).sum()
    used = float((counts > 0).sum())
    return dict(used_codes=used, usage=used / counts.numel(), perplexity=float(entropy.exp()))


__all__ = ['codebook_stats']
