"""init_cfg=dict(type='Pretrained') loads strictly into the MAGE modules: a wrong prefix, another model's
checkpoint, a missing key or a shape mismatch is an error naming the checkpoint, the prefix and the keys."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS

import mage_mm.register  # noqa: F401
from mage_mm.models.utils.pretrained import PretrainedMismatchError

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MAGE_CFG = osp.join(ROOT, 'configs', 'mage', 'mage_vit-tiny_1xb8-20iters_photo-crops-32px.py')
PROBE_CFG = osp.join(ROOT, 'configs', 'mage', 'benchmarks', 'vit-tiny_1xb8-linear-coslr-2e_photo-crops-5cls-32px.py')


@pytest.fixture(autouse=True)
def scope():
    DefaultScope.get_instance(f'strict-{id(scope)}', scope_name='mmpretrain')


@pytest.fixture(scope='module')
def mage_ckpt(tmp_path_factory):
    """A Runner-style checkpoint of the tiny MAGE (random weights)."""
    DefaultScope.get_instance('strict-ckpt', scope_name='mmpretrain')
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(MAGE_CFG, import_custom_modules=False).model)
    path = tmp_path_factory.mktemp('ckpt') / 'mage_tiny.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return str(path), model.state_dict()


def tok_prefix(sd):
    """Where the MAGE checkpoint holds its tokenizer (``backbone.tokenizer.`` or the older ``target_generator.``)."""
    return 'backbone.tokenizer.' if any(k.startswith('backbone.tokenizer.') for k in sd) else 'target_generator.'


def tokenizer(ckpt, prefix):
    return MODELS.build(dict(type='MAGEVQGAN', arch='tiny',
                             init_cfg=dict(type='Pretrained', checkpoint=ckpt, prefix=prefix)))


def test_tokenizer_loads_exactly(mage_ckpt):
    path, sd = mage_ckpt
    tok = tokenizer(path, tok_prefix(sd))
    tok.init_weights()
    for k, v in tok.state_dict().items():
        assert torch.equal(v, sd[tok_prefix(sd) + k]), k


def test_wrong_prefix_is_an_error(mage_ckpt):
    path, _ = mage_ckpt
    tok = tokenizer(path, 'neck.')
    with pytest.raises(PretrainedMismatchError) as err:
        tok.init_weights()
    msg = str(err.value)
    assert path in msg and "prefix 'neck.'" in msg and 'does not fit MAGEVQGAN' in msg
    assert 'keys are missing (decoder.' in msg and 'No key matches' in msg


def test_absent_prefix_names_the_present_ones(mage_ckpt):
    path, _ = mage_ckpt
    with pytest.raises(PretrainedMismatchError, match=r"no key starts with 'tokenizer\.'.*backbone\., head\., neck\."):
        tokenizer(path, 'tokenizer.').init_weights()


def test_another_models_checkpoint_without_prefix_is_an_error(mage_ckpt):
    """The full-size config loads its tokenizer without a prefix: a MAGE checkpoint there must not pass."""
    path, _ = mage_ckpt
    with pytest.raises(PretrainedMismatchError, match=r"prefix None\) does not fit MAGEVQGAN: .*No key matches"):
        tokenizer(path, None).init_weights()


def test_shape_mismatch_is_an_error(mage_ckpt, tmp_path):
    path, sd = mage_ckpt
    bad = dict(sd)
    key = tok_prefix(sd) + 'quantize.embedding.weight'
    bad[key] = torch.zeros(bad[key].shape[0] // 2, bad[key].shape[1])
    torch.save({'state_dict': bad}, tmp_path / 'bad.pth')
    with pytest.raises(PretrainedMismatchError, match=r'1 shapes differ \(quantize\.embedding\.weight'):
        tokenizer(str(tmp_path / 'bad.pth'), tok_prefix(sd)).init_weights()


def probe_model(ckpt):
    cfg = Config.fromfile(PROBE_CFG, import_custom_modules=False)
    cfg.model.backbone.init_cfg.checkpoint = ckpt
    if cfg.model.backbone.tokenizer.get('init_cfg'):  # the older design: the tokenizer loads on its own
        cfg.model.backbone.tokenizer.init_cfg.checkpoint = ckpt
    return MODELS.build(cfg.model)


def test_probe_backbone_loads_with_exactly_the_official_new_layers(mage_ckpt):
    path, sd = mage_ckpt
    model = probe_model(path)
    model.init_weights()
    own = model.backbone.state_dict()
    for k, v in own.items():
        if k.startswith('fc_norm.'):
            continue  # new in the global-pool classifier (the official assert)
        src = 'backbone.' + k
        if k.startswith('tokenizer.') and tok_prefix(sd) == 'target_generator.':
            src = 'target_generator.' + k[len('tokenizer.'):]
        assert torch.equal(v, sd[src]), k


def test_probe_backbone_missing_a_block_is_an_error(mage_ckpt, tmp_path):
    path, sd = mage_ckpt
    bad = {k: v for k, v in sd.items() if not k.startswith('backbone.blocks.1.')}
    torch.save({'state_dict': bad}, tmp_path / 'no_block.pth')
    model = probe_model(str(tmp_path / 'no_block.pth'))
    with pytest.raises(PretrainedMismatchError, match=r"prefix 'backbone\.'\) does not fit MAGEViT: .* keys are "
                                                      r'missing \(blocks\.1\.'):
        model.init_weights()


def test_strict_false_gives_mmengines_behaviour(mage_ckpt):
    path, _ = mage_ckpt
    tok = MODELS.build(dict(type='MAGEVQGAN', arch='tiny', init_cfg=dict(type='Pretrained', checkpoint=path,
                                                                        prefix='neck.', strict=False)))
    tok.init_weights()  # warns only
