"""One tokenizer prefix: a MAGE checkpoint initialises every model that contains the tokenizer.

Every such model keeps the tokenizer at ``backbone.tokenizer`` (MAGE, MAGE-C, MAGEGenerator, the linear-probe and
fine-tuning ``ImageClassifier`` and the ViTDet detector), so one ``init_cfg=Pretrained(prefix='backbone.')`` on the
backbone loads the encoder and the tokenizer of a MAGE checkpoint together; no config names a second prefix.
"""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from tool_utils import REPO_ROOT

from mage_mm.utils.checkpoint import TOKENIZER_KEY_PREFIX, safe_load

LP = osp.join(REPO_ROOT, 'configs', 'mage', 'benchmarks', 'vit-tiny_1xb8-linear-coslr-2e_photo-crops-5cls-32px.py')
FT = osp.join(REPO_ROOT, 'configs', 'mage', 'benchmarks', 'vit-tiny_1xb8-coslr-2e_photo-crops-5cls-32px.py')
DET = osp.join(REPO_ROOT, 'configs', 'detection', 'vitdet_mask-rcnn_mage-vit-tiny_1xb2-4iters_photo-coco-64px.py')
GEN = osp.join(REPO_ROOT, 'configs', 'generation', 'mage-gen_vit-tiny_iter8-temp6_photo-crops-32px.py')


def _build(config: str, ckpt: str, scope: str):
    cfg = Config.fromfile(config)
    assert 'init_cfg' not in cfg.model.backbone.tokenizer, 'the tokenizer must come with the backbone, one prefix'
    assert cfg.model.backbone.init_cfg.prefix == 'backbone.'
    cfg.model.backbone.init_cfg.checkpoint = ckpt
    if scope == 'mmdet':
        from mmdet.registry import MODELS

        import mage_mm.models.detection  # noqa: F401  registers MAGEViTDet
    else:
        from mmpretrain.registry import MODELS
    with DefaultScope.overwrite_default_scope(scope):
        model = MODELS.build(cfg.model)
        model.init_weights()
    return model


@pytest.mark.parametrize('config,scope', [(LP, 'mmpretrain'), (FT, 'mmpretrain'), (DET, 'mmdet')],
                         ids=['linear-probe', 'fine-tune', 'detection'])
def test_mage_checkpoint_initialises_the_model_under_one_prefix(tiny_mage_ckpt, config, scope):
    pre = safe_load(tiny_mage_ckpt)['state_dict']
    tok_keys = [k for k in pre if k.startswith(TOKENIZER_KEY_PREFIX)]
    assert tok_keys and not any(k.startswith(('target_generator.', 'tokenizer.')) for k in pre)
    sd = _build(config, tiny_mage_ckpt, scope).state_dict()
    for k in tok_keys:  # the whole tokenizer, bit for bit
        assert torch.equal(sd[k], pre[k]), k
    shared = [k for k in sd if k.startswith('backbone.') and k in pre and not k.startswith(TOKENIZER_KEY_PREFIX)]
    assert any('blocks.0.attn.qkv.weight' in k for k in shared)  # and the encoder
    for k in shared:
        if sd[k].shape == pre[k].shape and 'position_embeddings' not in k:
            assert torch.equal(sd[k], pre[k]), k


def test_the_same_checkpoint_loads_strictly_into_the_generator(tiny_mage_ckpt):
    from mage_mm.apis import init_generator
    gen = init_generator(GEN, tiny_mage_ckpt)
    pre = safe_load(tiny_mage_ckpt)['state_dict']
    assert set(gen.state_dict()) == set(pre)
    assert gen.tokenizer is gen.backbone.tokenizer


def test_converted_official_checkpoints_use_the_prefix(parity_dump):
    from mage_mm.converters import convert_official
    sd, layout = convert_official(parity_dump['state_dicts']['mage'])
    assert layout == 'pretrain'
    assert any(k.startswith(TOKENIZER_KEY_PREFIX) for k in sd)
    assert not any(k.startswith('target_generator.') for k in sd)


@torch.no_grad()
def test_generator_and_mage_share_one_network_call(tiny_mage_ckpt):
    """MAGE and MAGEGenerator mix in the same MAGENetworkMixin: same weights, same logits, same tokenizer."""
    from mmpretrain.registry import MODELS

    from mage_mm.apis import init_generator
    from mage_mm.models.algorithms import MAGE
    from mage_mm.models.generators.mage_generator import MAGEGenerator
    from mage_mm.models.utils.mage_network import MAGENetworkMixin
    assert MAGE.predict_logits is MAGEGenerator.predict_logits is MAGENetworkMixin.predict_logits
    gen = init_generator(GEN, tiny_mage_ckpt)
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', 'mage', 'mage_vit-tiny_1xb8-20iters_photo-crops-32px.py'))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        mage = MODELS.build(cfg.model)
    mage.load_state_dict(safe_load(tiny_mage_ckpt)['state_dict'], strict=True)
    mage.eval()
    torch.manual_seed(0)
    ids = torch.randint(0, mage.backbone.codebook_size, (2, mage.backbone.num_tokens))
    drop = torch.zeros(2, 1 + ids.shape[1], dtype=torch.bool)
    masked = drop.clone()
    masked[:, 1::3] = True
    torch.testing.assert_close(gen.predict_logits(ids, drop, masked), mage.predict_logits(ids, drop, masked),
                               atol=0, rtol=0)
    images = torch.rand(1, 3, 32, 32)
    assert torch.equal(gen.tokenize(images), mage.tokenize(images))
