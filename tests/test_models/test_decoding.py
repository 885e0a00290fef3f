"""The iterative decoding loop: official trajectory parity, schedules, samplers, editing masks.

The parity tests run the real MAGE network built from the parity dump's
official weights (tests/parity_utils.py); every size and setting comes from
the dump (path from MAGE_PARITY_DUMP).
"""
import pytest
import torch
from parity_utils import build_mage

from mage_mm.models.generators.decoding import (
    BatchSampler,
    DecodingOptions,
    PerImageSampler,
    ReplaySampler,
    clipped_mask_len,
    edit_mask,
    iterative_decode,
    mask_ratio,
    schedule_counts,
    token_mask_from_pixels,
)


@pytest.fixture(scope='module')
def official(parity_dump):
    """(logits_fn, settings) of the official tiny model of the dump."""
    model = build_mage(parity_dump)
    bb = model.backbone

    def logits_fn(ids):
        all_mask = torch.cat([torch.zeros_like(ids[:, :1], dtype=torch.bool), ids == bb.mask_id], dim=1)
        return model.predict_logits(ids, torch.zeros_like(all_mask), all_mask)

    g = parity_dump['generation_loop']
    settings = dict(mask_id=bb.mask_id, codebook_size=bb.codebook_size, num_iter=g['num_iter'],
                    choice_temperature=g['choice_temperature'])
    return logits_fn, settings, bb


def _decode(logits_fn, init_ids, *, sampler, mask_id, codebook_size, record_steps=False, **options):
    """:func:`iterative_decode` with the options given as keywords (one :class:`DecodingOptions`)."""
    return iterative_decode(logits_fn, init_ids, mask_id=mask_id, codebook_size=codebook_size, sampler=sampler,
                            options=DecodingOptions(**options), record_steps=record_steps)


def _blank(parity_dump, bb, batch=None):
    B, N = parity_dump['generation_loop']['final_token_ids'].shape
    return torch.full((batch or B, N), bb.mask_id, dtype=torch.long)


def _dump_batch(parity_dump) -> int:
    """The dump's batch size (every per-image list below has this length)."""
    return parity_dump['generation_loop']['final_token_ids'].shape[0]


@torch.no_grad()
def test_replayed_draws_reproduce_the_official_trajectory(parity_dump, official):
    logits_fn, settings, bb = official
    g = parity_dump['generation_loop']
    assert (g['step_input_ids'][:, :, 0] == bb.fake_class_id).all()  # the dump's class slot
    sampler = ReplaySampler(g['step_categorical_samples'], g['step_gumbel_draws'])
    out = _decode(logits_fn, _blank(parity_dump, bb), sampler=sampler, record_steps=True, **settings)
    assert out.step_input_ids.shape == g['step_input_ids'][:, :, 1:].shape
    for t in range(g['num_iter']):
        assert torch.equal(out.step_input_ids[t], g['step_input_ids'][t, :, 1:]), f'step {t} differs'
    assert torch.equal(out.token_ids, g['final_token_ids'])


@torch.no_grad()
def test_official_rng_order_reproduces_without_injection(parity_dump, official):
    """torch.manual_seed + np.random.seed, CPU Categorical then np.random.gumbel (the dump's README)."""
    logits_fn, settings, bb = official
    g = parity_dump['generation_loop']
    out = _decode(logits_fn, _blank(parity_dump, bb), sampler=BatchSampler(g['seed']), record_steps=True,
                           **settings)
    assert torch.equal(out.step_input_ids, g['step_input_ids'][:, :, 1:])
    assert torch.equal(out.token_ids, g['final_token_ids'])


@torch.no_grad()
def test_counts_per_step_follow_the_schedule(parity_dump, official):
    logits_fn, settings, bb = official
    N = parity_dump['generation_loop']['final_token_ids'].shape[1]
    for schedule, steps in (('cosine', settings['num_iter']), ('linear', 6), ('arccos', 5)):
        s = dict(settings, num_iter=steps)
        seeds = list(range(1, _dump_batch(parity_dump) + 1))
        out = _decode(logits_fn, _blank(parity_dump, bb), sampler=PerImageSampler(seeds),
                      schedule=schedule, record_steps=True, **s)
        masked = (out.step_input_ids == bb.mask_id).sum(-1)  # (T, B) masked at the start of each step
        expected = [N] + [keep for _, keep in schedule_counts(N, steps, schedule)][:-1]
        assert masked.T.tolist() == [expected] * len(seeds), schedule
        assert (out.token_ids != bb.mask_id).all() and out.token_ids.max() < bb.codebook_size


def test_cosine_counts_equal_the_official_table():
    # MAGE.md section d, computed from the official rule for 256 tokens
    fixed12 = [3, 6, 11, 15, 18, 22, 26, 27, 31, 31, 33, 32]
    fixed20 = [1, 3, 4, 5, 7, 8, 10, 11, 13, 13, 15, 16, 17, 17, 19, 18, 20, 19, 20, 19]
    assert [f for f, _ in schedule_counts(256, 12)] == fixed12
    assert [f for f, _ in schedule_counts(256, 20)] == fixed20
    assert schedule_counts(256, 20)[-1][1] == 1  # the "+1" the final sampled map fills


@pytest.mark.parametrize('schedule', ['cosine', 'linear', 'arccos'])
@pytest.mark.parametrize('num_tokens,steps', [(256, 20), (256, 12), (64, 8), (16, 30), (5, 1)])
def test_schedule_properties(schedule, num_tokens, steps):
    counts = schedule_counts(num_tokens, steps, schedule)
    assert len(counts) == steps
    remaining = [num_tokens] + [keep for _, keep in counts]
    assert all(a > b for a, b in zip(remaining[:-1], remaining[1:]) if a > 1)  # strictly fewer while > 1
    assert all(fixed >= 1 for fixed, _ in counts if fixed + _ > 1)
    assert sum(fixed for fixed, _ in counts) + counts[-1][1] == num_tokens  # nothing lost
    assert counts[-1][1] <= 1  # the last map leaves at most the clipped one, filled by the final sample
    assert mask_ratio(schedule, 1.0) == pytest.approx(0.0, abs=1e-12)
    assert 0.0 <= mask_ratio(schedule, 0.5) <= 1.0


def test_schedule_errors():
    with pytest.raises(ValueError, match='unknown mask schedule'):
        mask_ratio('square', 0.5)
    with pytest.raises(ValueError, match='decoding steps'):
        schedule_counts(256, 0)
    assert clipped_mask_len(256, 0, 3, 10) == 0  # nothing left to mask


@torch.no_grad()
def test_per_image_seeds_do_not_depend_on_the_batch(parity_dump, official):
    logits_fn, settings, bb = official
    batch = _decode(logits_fn, _blank(parity_dump, bb, 3), sampler=PerImageSampler([5, 6, 7]), **settings)
    alone = _decode(logits_fn, _blank(parity_dump, bb, 1), sampler=PerImageSampler([6]), **settings)
    assert torch.equal(batch.token_ids[1:2], alone.token_ids)
    # batch size 1 is the official gen_image(1, seed) RNG order
    official_one = _decode(logits_fn, _blank(parity_dump, bb, 1), sampler=BatchSampler(6), **settings)
    assert torch.equal(official_one.token_ids, alone.token_ids)
    other = _decode(logits_fn, _blank(parity_dump, bb, 1), sampler=PerImageSampler([8]), **settings)
    assert not torch.equal(other.token_ids, alone.token_ids)


@torch.no_grad()
def test_top_k_one_without_gumbel_is_deterministic(parity_dump, official):
    logits_fn, settings, bb = official
    s = dict(settings, num_iter=4, choice_temperature=0.0)
    a = _decode(logits_fn, _blank(parity_dump, bb, 1), sampler=PerImageSampler([1]), top_k=1, **s)
    b = _decode(logits_fn, _blank(parity_dump, bb, 1), sampler=PerImageSampler([2]), top_k=1, **s)
    assert torch.equal(a.token_ids, b.token_ids)
    c = _decode(logits_fn, _blank(parity_dump, bb, 1), sampler=PerImageSampler([1]),
                         sampling_temperature=0.5, top_k=8, per_sample_mask_len=True, **s)
    assert (c.token_ids < bb.codebook_size).all()
    with pytest.raises(ValueError, match='sampling_temperature'):
        _decode(logits_fn, _blank(parity_dump, bb, 1), sampler=PerImageSampler([1]),
                         sampling_temperature=0.0, **s)


@torch.no_grad()
def test_fixed_tokens_stay_fixed_and_empty_masks_decode_nothing(parity_dump, official):
    logits_fn, settings, bb = official
    ids = parity_dump['vqgan']['token_ids']  # real tokens of the dump's images
    if ids.shape[0] == 1:  # a one-image dump: add a second, fully known image (its own tokens shifted)
        ids = torch.cat([ids, ids.roll(1, dims=1)])
    batch, n = ids.shape
    seeds = list(range(batch))
    start, band = n // 6, max(1, n // 5)  # image 0: a band of tokens to regenerate; the others: nothing
    unknown = torch.zeros_like(ids, dtype=torch.bool)
    unknown[0, start:start + band] = True
    init = ids.masked_fill(unknown, bb.mask_id)
    out = _decode(logits_fn, init, sampler=PerImageSampler(seeds), per_sample_mask_len=True,
                           schedule_base='unknown', record_steps=True, **settings)
    assert torch.equal(out.token_ids[~unknown], ids[~unknown])
    assert torch.equal(out.token_ids[1:], ids[1:])
    for step_ids in out.step_input_ids:  # known tokens are never re-masked
        assert torch.equal(step_ids[~unknown], ids[~unknown])
    masked0 = (out.step_input_ids[:, 0] == bb.mask_id).sum(-1).tolist()
    assert masked0 == [band] + [k for _, k in schedule_counts(band, settings['num_iter'])][:-1]
    assert torch.equal(_decode(logits_fn, ids, sampler=PerImageSampler(seeds), **settings).token_ids, ids)


def test_pixel_masks_dilate_to_token_cells():
    mask = torch.zeros(1, 1, 32, 32)
    mask[0, 0, 9, 14] = 1  # one pixel in cell (2, 3) of an 8x8 grid (4 px cells)
    cells = token_mask_from_pixels(mask, (8, 8)).reshape(8, 8)
    assert cells.sum() == 1 and cells[2, 3]
    grown = token_mask_from_pixels(mask, (8, 8), dilation=1).reshape(8, 8)
    assert grown.sum() == 9 and grown[1:4, 2:5].all()
    odd = token_mask_from_pixels(torch.ones(1, 30, 30), (8, 8))  # sizes that do not tile the grid
    assert odd.all()


def test_edit_masks():
    inpaint = edit_mask('inpaint', 32, 32, box=(8, 4, 24, 20))
    assert inpaint.shape == (1, 32, 32) and inpaint.sum() == 16 * 16 and inpaint[0, 4, 8] == 1
    assert torch.equal(edit_mask('outpaint', 32, 32, box=(8, 4, 24, 20)), 1 - inpaint)
    right = edit_mask('uncrop', 32, 32, side='right', fraction=0.25)
    assert right[0, :, 24:].all() and not right[0, :, :24].any()
    with pytest.raises(ValueError, match='box'):
        edit_mask('inpaint', 32, 32, box=(8, 4, 40, 20))
    with pytest.raises(ValueError, match='kind'):
        edit_mask('erase', 32, 32)
