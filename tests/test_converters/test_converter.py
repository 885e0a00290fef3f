"""tools/model_converters/mage_to_mmpretrain.py on synthetic official checkpoints.

Real official files are Google-Drive downloads that cannot exist here, so the
tests build official-layout checkpoints: tiny ones from the parity dump's
official state dicts, and full-size ViT-B/L ones (meta tensors) from the
official key lists in tests/data/*.tsv.
"""
import argparse
import ast
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmpretrain.registry import MODELS
from parity_utils import build_mage, build_tokenizer

from mage_mm.converters import CheckpointLayoutError, convert_official

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools', 'model_converters', 'mage_to_mmpretrain.py')


def run_tool(*args):
    return subprocess.run([sys.executable, TOOL, *map(str, args)], capture_output=True, text=True, cwd=ROOT)


def official_keys(name):
    rows = [line.rstrip('\n').split('\t') for line in open(osp.join(ROOT, 'tests', 'data', name))
            if not line.startswith('#')]
    return {k: ast.literal_eval(shape) for k, shape, _ in rows}


@pytest.mark.parametrize('arch,tsv', [('b', 'keys_mage_vit_base_pretrain.tsv'),
                                      ('l', 'keys_mage_vit_large_pretrain.tsv')])
def test_full_size_pretrain_layout_maps_key_for_key(arch, tsv):
    keys = official_keys(tsv)
    sd = {k: torch.empty(shape, device='meta') for k, shape in keys.items()}
    converted, layout = convert_official({'model': sd})
    assert layout == 'pretrain'
    base = 'configs/_base_/models/mage_vit-{}-p16.py'.format('base' if arch == 'b' else 'large')
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, base)).model
    cfg.backbone.tokenizer.init_cfg = None
    with torch.device('meta'):
        model = MODELS.build(cfg)
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in converted.items()} == ours
    legacy = {'cls_token', 'pos_embed', 'mask_token', 'decoder_pos_embed', 'patch_embed.proj.weight',
              'patch_embed.proj.bias', 'decoder_pred.weight', 'decoder_pred.bias'}
    assert legacy <= set(keys) and len(converted) == len(keys) - len(legacy)


def test_full_size_classifier_layout():
    keys = official_keys('keys_vit_base_linprobe_finetune_globalpool.tsv')
    sd = {k: torch.empty(shape, device='meta') for k, shape in keys.items()}
    converted, layout = convert_official({'model': sd})
    assert layout == 'classifier'
    assert 'head.fc.weight' in converted and 'backbone.fc_norm.weight' in converted
    assert sum(k.startswith('backbone.tokenizer.') for k in converted) == 168
    from mmpretrain.models import ImageClassifier
    with torch.device('meta'):
        model = ImageClassifier(
            backbone=dict(type='MAGEViT', arch='b', out_type='avg_featmap', tokenizer=dict(type='MAGEVQGAN')),
            head=dict(type='LinearClsHead', num_classes=1000, in_channels=768))
    assert {k: tuple(v.shape) for k, v in converted.items()} == {k: tuple(v.shape)
                                                                 for k, v in model.state_dict().items()}


@pytest.mark.integration
def test_tool_converts_tiny_official_files_that_then_load_strictly(parity_dump, tmp_path):
    sds = parity_dump['state_dicts']
    # official pre-training file: dict(model=..., args=Namespace, ...) as main_pretrain.py saves it
    src = tmp_path / 'mage_official.pth'
    torch.save({'model': sds['mage'], 'epoch': 3, 'args': argparse.Namespace(blr=1.5e-4, mask_ratio_min=0.5)}, src)
    dst = tmp_path / 'mage_converted.pth'
    res = run_tool(src, dst)
    assert res.returncode == 0, res.stderr
    assert 'pretrain' in res.stdout
    ckpt = torch.load(dst, weights_only=True)
    model = build_mage(parity_dump)
    model.load_state_dict(ckpt['state_dict'], strict=True)
    # tokenizer file: Lightning-style dict(state_dict=...)
    src = tmp_path / 'vqgan_official.ckpt'
    torch.save({'state_dict': sds['vqgan'], 'global_step': 10}, src)
    res = run_tool(src, tmp_path / 'vqgan.pth')
    assert res.returncode == 0, res.stderr
    tok = build_tokenizer(parity_dump)
    tok.load_state_dict(torch.load(tmp_path / 'vqgan.pth', weights_only=True)['state_dict'], strict=True)
    # classifier, and --no-tokenizer
    src = tmp_path / 'vit.pth'
    torch.save({'model': sds['vit_global_pool']}, src)
    res = run_tool(src, tmp_path / 'vit_conv.pth', '--no-tokenizer')
    assert res.returncode == 0, res.stderr
    out = torch.load(tmp_path / 'vit_conv.pth', weights_only=True)['state_dict']
    assert not any(k.startswith('backbone.tokenizer.') for k in out) and 'head.fc.weight' in out


def test_linear_probe_bn_head_layout(parity_dump):
    sd = dict(parity_dump['state_dicts']['vit_global_pool'])
    w, b = sd.pop('head.weight'), sd.pop('head.bias')
    d = w.shape[1]
    sd.update({'head.0.running_mean': torch.zeros(d), 'head.0.running_var': torch.ones(d),
               'head.0.num_batches_tracked': torch.tensor(0), 'head.1.weight': w, 'head.1.bias': b})
    out, layout = convert_official({'model': sd})
    assert layout == 'classifier'
    assert torch.equal(out['head.fc.weight'], w) and 'neck.bn.running_var' in out


@pytest.mark.integration
def test_error_paths(parity_dump, tmp_path):
    sd = dict(parity_dump['state_dicts']['mage'])
    missing = dict(sd)
    del missing['mlm_layer.bias'], missing['blocks.0.attn.qkv.weight']
    with pytest.raises(CheckpointLayoutError, match=r'missing 2 key\(s\): blocks.0.attn.qkv.weight, mlm_layer.bias'):
        convert_official({'model': missing})
    extra = dict(sd, **{'contrastive_proj.0.weight': torch.zeros(2, 2)})
    with pytest.raises(CheckpointLayoutError, match='unexpected key.*contrastive_proj.0.weight.*--ignore-keys'):
        convert_official({'model': extra})
    out, _ = convert_official({'model': extra}, ignore_keys=r'^contrastive_proj\.')
    assert not any('contrastive' in k for k in out)
    with pytest.raises(CheckpointLayoutError, match='unknown checkpoint layout; keys: foo'):
        convert_official({'model': {'foo': torch.zeros(1)}})
    with pytest.raises(CheckpointLayoutError, match='top-level keys are: epoch, optimizer'):
        convert_official({'epoch': 1, 'optimizer': {}})
    with pytest.raises(CheckpointLayoutError, match='already in mage_mm'):
        convert_official({'state_dict': {'backbone.blocks.0.norm1.weight': torch.zeros(1)}})
    # through the tool: clear message, non-zero exit, no traceback
    bad = tmp_path / 'bad.pth'
    torch.save({'model': missing}, bad)
    res = run_tool(bad, tmp_path / 'out.pth')
    assert res.returncode == 2 and 'missing 2 key(s)' in res.stderr and 'Traceback' not in res.stderr
    res = run_tool(tmp_path / 'absent.pth', tmp_path / 'out.pth')
    assert res.returncode == 2 and 'not found' in res.stderr
    assert not (tmp_path / 'out.pth').exists()


class _RunsCodeOnLoad:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, 'w'))


@pytest.mark.integration
def test_converter_never_unpickles_code(parity_dump, tmp_path):
    marker = tmp_path / 'pwned'
    src = tmp_path / 'evil.pth'
    torch.save({'model': parity_dump['state_dicts']['vqgan'], 'x': _RunsCodeOnLoad(str(marker))}, src)
    res = run_tool(src, tmp_path / 'out.pth')
    assert res.returncode == 2 and 'refusing to unpickle' in res.stderr and 'Traceback' not in res.stderr
    assert not marker.exists() and not (tmp_path / 'out.pth').exists()
