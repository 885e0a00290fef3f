"""A tokenizer checkpoint names its architecture as data; config text inside a checkpoint is never evaluated.

Each payload is Python that would create a marker file if anything ran it (``mmengine.Config.fromstring``
executes config text). The tests assert the marker never appears and the error says what to do.
"""
import os.path as osp

import pytest
import torch
import torch.nn as nn
from mmengine.runner.checkpoint import get_state_dict, weights_to_cpu
from tool_utils import load_tool

from mage_mm.apis import load_tokenizer, read_tokenizer
from mage_mm.models.tokenizers import MAGEVQGAN
from mage_mm.utils.checkpoint import safe_load

#: an architecture that is not one of the built-in ones, so no shape match can name it
CUSTOM_ARCH = dict(ch=32, ch_mult=(1, 2), num_res_blocks=1, z_channels=32, num_codes=64)


def payload_cfg(marker) -> str:
    """Config text that creates ``marker`` when evaluated, and would otherwise name the arch."""
    return (f"open({str(marker)!r}, 'w').close()\n"
            f"model = dict(type='VQGANTokenizerTrainer', tokenizer=dict(type='MAGEVQGAN', arch={CUSTOM_ARCH!r}))\n")


def old_style_checkpoint(path, marker) -> str:
    """A file as written before the arch was stored as data: the arch only in ``meta['cfg']`` text."""
    sd = {f'tokenizer.{k}': v for k, v in MAGEVQGAN(arch=CUSTOM_ARCH).state_dict().items()}  # plain dict: no _metadata
    torch.save(dict(state_dict=sd, meta=dict(cfg=payload_cfg(marker))), path)
    return str(path)


def test_config_text_in_meta_is_never_evaluated(tmp_path):
    marker = tmp_path / 'pwned'
    ckpt = old_style_checkpoint(tmp_path / 'iter_1.pth', marker)
    with pytest.raises(ValueError, match=r'iter_1.pth.*not evaluated.*pass the arch explicitly'):
        load_tokenizer(ckpt)
    assert not marker.exists()
    # the explicit arch loads it (strictly)
    tok = load_tokenizer(ckpt, arch=CUSTOM_ARCH)
    assert tok.num_codes == 64
    assert not marker.exists()


def test_export_tool_refuses_without_arch_and_runs_nothing(tmp_path, capsys):
    marker = tmp_path / 'pwned'
    ckpt = old_style_checkpoint(tmp_path / 'iter_1.pth', marker)
    tool = load_tool('model_converters/export_vqgan_tokenizer')
    dst = str(tmp_path / 'out.pth')
    assert tool.main([ckpt, dst]) == 2
    assert 'pass the arch explicitly' in capsys.readouterr().err
    assert not marker.exists() and not osp.exists(dst)
    # --arch: a dict literal, parsed (ast.literal_eval), never evaluated
    assert tool.main([ckpt, dst, '--arch', repr(CUSTOM_ARCH)]) == 0
    out = safe_load(dst)
    assert out['meta']['mage_mm']['tokenizer_arch'] == CUSTOM_ARCH
    assert read_tokenizer(dst)[1] == CUSTOM_ARCH  # read back from data
    assert not marker.exists()


def test_demo_report_reconstruction_runs_nothing(tmp_path):
    marker = tmp_path / 'pwned'
    ckpt = old_style_checkpoint(tmp_path / 'iter_1.pth', marker)
    from PIL import Image
    (tmp_path / 'imgs').mkdir()
    Image.new('RGB', (16, 16), (10, 20, 30)).save(tmp_path / 'imgs' / 'a.png')
    report = load_tool('analysis_tools/demo_report')
    with pytest.raises(ValueError, match='pass the arch explicitly'):
        report.reconstruction_grid(ckpt, str(tmp_path / 'imgs'), 1, str(tmp_path / 'grid.png'))
    assert not marker.exists()


class _Holder(nn.Module):
    """A model with its tokenizer under ``prefix`` (as VQGANTokenizerTrainer / MAGE hold theirs)."""

    def __init__(self, name: str, arch) -> None:
        super().__init__()
        parent, _, leaf = name.rpartition('.')
        owner = self
        if parent:  # 'backbone.tokenizer': the tokenizer inside a backbone, as every MAGE model holds it
            owner = nn.Module()
            self.add_module(parent, owner)
        owner.add_module(leaf, MAGEVQGAN(arch=arch))


@pytest.mark.parametrize('name', ['tokenizer', 'backbone.tokenizer'])
def test_runner_checkpoints_store_the_arch_as_data(tmp_path, name):
    """mmengine's get_state_dict (what Runner.save_checkpoint uses) records the arch in ``_metadata``."""
    marker = tmp_path / 'pwned'
    model = _Holder(name, CUSTOM_ARCH)
    path = tmp_path / 'iter_2.pth'
    # a config payload beside it must not matter: the data is found first and the text is never read
    torch.save(dict(state_dict=weights_to_cpu(get_state_dict(model)), meta=dict(cfg=payload_cfg(marker))), path)
    sd, arch, _ = read_tokenizer(str(path))
    assert arch == CUSTOM_ARCH and set(sd) == set(MAGEVQGAN(arch=CUSTOM_ARCH).state_dict())
    assert load_tokenizer(str(path)).quantize.embedding.weight.shape == (64, 32)
    assert not marker.exists()
    # a built-in arch is recorded by name
    torch.save(dict(state_dict=_Holder(name, 'tiny').state_dict()), path)
    assert read_tokenizer(str(path))[1] == 'tiny'


def test_malformed_stored_arch_is_a_clear_error(tmp_path):
    sd = MAGEVQGAN(arch='tiny').state_dict()
    for bad, message in (('huge', "stored tokenizer arch 'huge' is not one of"),
                         (dict(CUSTOM_ARCH, extra=1), 'must be a name or a dict with keys'),
                         (dict(CUSTOM_ARCH, ch='32'), 'values other than ints')):
        path = tmp_path / 'bad.pth'
        torch.save(dict(state_dict=sd, meta=dict(mage_mm=dict(tokenizer_arch=bad))), path)
        with pytest.raises(ValueError, match=message):
            read_tokenizer(str(path))
