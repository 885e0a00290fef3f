"""One DecodingOptions, one validation: a bad value fails with the same message through every entry point.

Entry points: :func:`iterative_decode` (its ``options``), :class:`MAGEGenerator` built from a config
(``model.<option>``), its Python API and mmagic's ``sample_kwargs`` (the inferencer path), and the
command lines of ``tools/generate.py`` and ``tools/edit.py``.
"""
import pytest
import torch
from generation_utils import TINY_GEN_CFG
from tool_utils import load_tool

import mage_mm.models.generators.mage_generator  # noqa: F401  registers MAGEGenerator in mmagic
from mage_mm.apis import init_generator
from mage_mm.models.generators import DecodingOptions, PerImageSampler, iterative_decode

# (option, bad value, CLI flag or None where argparse's choices refuse it first, expected message)
BAD = [
    ('top_k', 0, '--top-k', 'decoding option top_k must be None (all codes) or an integer >= 1; got 0'),
    ('num_iter', 0, '--num-iter', 'decoding option num_iter (the number of decoding steps) must be an integer >= 1; '
                                  'got 0'),
    ('choice_temperature', -1.0, '--choice-temperature',
     'decoding option choice_temperature must be a finite number >= 0; got -1.0'),
    ('sampling_temperature', 0.0, '--sampling-temperature',
     'decoding option sampling_temperature must be a finite number > 0; got 0.0'),
    ('schedule', 'square', None, "decoding option schedule: unknown mask schedule 'square'"),
    ('seed_mode', 'rows', None, "decoding option seed_mode must be one of ('per_image', 'batch'); got 'rows'"),
]


@pytest.fixture(scope='module')
def generator():
    return init_generator(TINY_GEN_CFG)  # random weights: only the option handling is under test


def _message(fn) -> str:
    with pytest.raises(ValueError) as info:
        fn()
    return str(info.value)


def test_defaults_are_the_official_settings():
    opts = DecodingOptions()
    assert (opts.num_iter, opts.choice_temperature, opts.schedule, opts.sampling_temperature, opts.top_k) == \
        (20, 6.0, 'cosine', 1.0, None)
    assert (opts.per_sample_mask_len, opts.schedule_base, opts.seed_mode) == (False, 'all', 'per_image')
    assert DecodingOptions.from_dict(dict(top_k=5)).replace(top_k=None).top_k is None  # None: all codes
    with pytest.raises(ValueError, match=r"unknown decoding option\(s\) \['steps'\]"):
        DecodingOptions().replace(steps=3)
    with pytest.raises(ValueError, match='num_iter'):
        DecodingOptions(num_iter=True)  # a bool is not a step count


@pytest.mark.parametrize('name,value,flag,expected', BAD, ids=[b[0] for b in BAD])
def test_same_error_through_every_entry_point(generator, name, value, flag, expected, capsys):
    messages = {}
    init = torch.full((1, generator.backbone.num_tokens), generator.mask_id, dtype=torch.long)
    messages['iterative_decode'] = _message(lambda: iterative_decode(
        generator._logits, init, mask_id=generator.mask_id, codebook_size=generator.backbone.codebook_size,
        sampler=PerImageSampler([0]), options=DecodingOptions(**{name: value})))
    messages['config'] = _message(lambda: init_generator(TINY_GEN_CFG, cfg_options={f'model.{name}': value}))
    messages['python api'] = _message(lambda: generator.generate([0], **{name: value}))
    messages['sample_kwargs'] = _message(lambda: generator(dict(num_batches=1, sample_kwargs={name: value})))
    if flag is not None:
        generate = load_tool('generate')
        with pytest.raises(SystemExit) as info:
            generate.parse_args(['cfg.py', 'ckpt.pth', '--num-images', '1', '--out-dir', 'out', flag, str(value)])
        assert info.value.code == 2
        messages['tools/generate.py'] = capsys.readouterr().err.strip().splitlines()[-1]
    assert all(expected in m for m in messages.values()), messages


@pytest.mark.parametrize('flag,value,expected', [('--num-iter', '0', BAD[1][3]), ('--choice-temperature', '-1',
                                                                                  BAD[2][3])])
def test_edit_tool_parses_with_the_same_checks(flag, value, expected, capsys):
    edit = load_tool('edit')
    with pytest.raises(SystemExit):
        edit.parse_args(['cfg.py', 'ckpt.pth', '--image', 'in.png', '--out', 'out.png', '--task', 'inpaint', flag,
                         value])
    assert expected in capsys.readouterr().err
