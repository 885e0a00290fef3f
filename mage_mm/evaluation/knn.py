"""Frozen-feature classification: pooling, weighted kNN, a quick linear probe, top-k accuracy.

Plain torch (no OpenMMLab import); :class:`~mage_mm.engine.hooks.KNNEvalHook` runs it during pretraining.
"""
from typing import Dict, Sequence

import torch
import torch.nn.functional as F


def pool_features(feats) -> torch.Tensor:
    """Backbone output → one vector per image.

    A tuple/list keeps its last entry; (B, D) is used as is; (B, 1 + N, D)
    token sequences (MAGE's ``'raw'`` output) are averaged over the image
    tokens, skipping the class slot; (B, C, H, W) maps are averaged over space.
    """
    if isinstance(feats, (tuple, list)):
        feats = feats[-1]
    if feats.dim() == 2:
        return feats
    if feats.dim() == 3:
        return feats[:, 1:].mean(dim=1)
    if feats.dim() == 4:
        return feats.mean(dim=(2, 3))
    raise ValueError(f'cannot pool features of shape {tuple(feats.shape)}')


def topk_accuracy(scores: torch.Tensor, labels: torch.Tensor, topk: Sequence[int]) -> Dict[int, float]:
    """Top-k accuracy in percent; k larger than the number of classes is clipped."""
    max_k = min(max(topk), scores.shape[1])
    pred = scores.topk(max_k, dim=1).indices
    hits = pred == labels[:, None]
    return {k: hits[:, :min(k, max_k)].any(dim=1).float().mean().item() * 100.0 for k in topk}


def knn_scores(train_feats: torch.Tensor, train_labels: torch.Tensor, test_feats: torch.Tensor,
               num_classes: int, k: int = 20, temperature: float = 0.07, chunk: int = 1024) -> torch.Tensor:
    """Weighted kNN class scores (Wu et al. 2018 / DINO): cosine similarity,
    the k nearest training samples vote with weight ``exp(sim / T)``."""
    train = F.normalize(train_feats.float(), dim=1)
    test = F.normalize(test_feats.float(), dim=1)
    k = min(k, train.shape[0])
    out = []
    for start in range(0, test.shape[0], chunk):
        sim, idx = (test[start:start + chunk] @ train.t()).topk(k, dim=1)
        votes = torch.zeros(sim.shape[0], num_classes, dtype=sim.dtype, device=sim.device)
        out.append(votes.scatter_add_(1, train_labels[idx], (sim / temperature).exp()))
    return torch.cat(out)


def linear_probe_scores(train_feats: torch.Tensor, train_labels: torch.Tensor, test_feats: torch.Tensor,
                        num_classes: int, steps: int = 200, lr: float = 0.01, weight_decay: float = 0.0,
                        seed: int = 0) -> torch.Tensor:
    """A quick full-batch linear probe: features standardised with the training
    statistics (a BatchNorm without affine, as in the MAE/MAGE linear probe),
    then a linear layer trained with Adam on cross-entropy."""
    mean, std = train_feats.mean(0), train_feats.std(0, unbiased=False) + 1e-6
    x, x_test = (train_feats - mean) / std, (test_feats - mean) / std
    gen = torch.Generator().manual_seed(seed)
    layer = torch.nn.Linear(x.shape[1], num_classes)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(layer.weight.shape, generator=gen) * 0.01)
        layer.bias.zero_()
    opt = torch.optim.Adam(layer.parameters(), lr=lr, weight_decay=weight_decay)
    with torch.enable_grad():
        for _ in range(steps):
            opt.zero_grad()
            F.cross_entropy(layer(x), train_labels).backward()
            opt.step()
    with torch.no_grad():
        return layer(x_test)


__all__ = ['pool_features', 'topk_accuracy', 'knn_scores', 'linear_probe_scores']
