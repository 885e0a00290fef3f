"""Token ids that arrive pre-computed (a token cache) instead of images: the checks a model runs on them."""
import hashlib
from typing import Any, Optional, Sequence

import torch


class TokenCacheError(ValueError):
    """A token cache, its manifest or shards, or cached ids that do not fit (names the file and what is wrong)."""


def tokenizer_sha256(tokenizer: torch.nn.Module) -> str:
    """Content hash of a tokenizer: every state-dict entry's name, dtype, shape and bytes, in name order."""
    h = hashlib.sha256()
    for name, tensor in sorted(tokenizer.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f'{name}|{t.dtype}|{tuple(t.shape)}|'.encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def check_cached_ids(ids: torch.Tensor, data_samples: Optional[Sequence[Any]], tokenizer: torch.nn.Module,
                     num_tokens: int) -> torch.Tensor:
    """Cached token ids checked against the model that trains on them; returned as int64 (B, N).

    The data samples of a :class:`~mage_mm.datasets.TokenCacheDataset` batch
    carry the cache's ``tokenizer_sha256``; it must equal this model's
    tokenizer's (hashed once per process, the tokenizer is frozen).

    Raises:
        TokenCacheError: another token grid, another tokenizer, a batch without
            the hash, or ids outside the codebook.
    """
    if ids.dim() != 2 or ids.shape[1] != num_tokens:
        raise TokenCacheError(f'cached token ids have shape {tuple(ids.shape)}; the model expects (B, {num_tokens}) '
                              "(another token grid: make the cache with this model's tokenizer and image size)")
    metas = [getattr(s, 'metainfo', {}) for s in (data_samples or [])]
    hashes = {m.get('tokenizer_sha256') for m in metas}
    if not metas or None in hashes:
        raise TokenCacheError('cached token ids arrived without the tokenizer_sha256 of their cache; use '
                              'TokenCacheDataset, which records it in every data sample')
    own = getattr(tokenizer, '_mage_mm_sha256', None)
    if own is None:
        own = tokenizer_sha256(tokenizer)
        tokenizer._mage_mm_sha256 = own
    if hashes != {own}:
        cache = sorted(hashes)[0]
        raise TokenCacheError(f'the token cache was made with another tokenizer (sha256 {cache[:12]}...) than this '
                              f"model's (sha256 {own[:12]}...); load the same tokenizer weights or re-run "
                              'tools/dataset_converters/pretokenize.py with this one')
    num_codes = getattr(tokenizer, 'num_codes', None)
    if num_codes is not None and ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= num_codes):
        raise TokenCacheError(f'cached token ids out of range [0, {num_codes}): '
                              f'[{int(ids.min())}, {int(ids.max())}]')
    return ids.long()


__all__ = ['TokenCacheError', 'tokenizer_sha256', 'check_cached_ids']
