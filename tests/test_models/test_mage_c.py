"""MAGE-C: two views through the real MultiView pipeline, MAGE + contrastive loss, gradients."""
import glob
import json
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.dataset import default_collate
from mmpretrain.registry import DATASETS, MODELS
from tool_utils import load_tool

from mage_mm.datasets import packaged_photo_paths, random_crops, write_image_folder
from mage_mm.models.algorithms import MAGE, MAGEC
from mage_mm.utils.checkpoint import safe_load

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CFG = osp.join(ROOT, 'configs', 'mage', 'mage-c_vit-tiny_1xb8-20iters_photo-crops-32px.py')


pytestmark = pytest.mark.usefixtures('mmpretrain_scope')  # tests/conftest.py


@pytest.fixture(scope='module')
def image_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp('photos')
    images, _ = random_crops(packaged_photo_paths(), 16, 48, seed=3)
    write_image_folder(images, str(out))
    return str(out)


def build(weight=None) -> MAGEC:
    cfg = Config.fromfile(CFG).model
    if weight is not None:
        cfg.contrastive_weight = weight
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def two_view_batch(model, image_dir, n=4):
    cfg = Config.fromfile(CFG)
    dataset = DATASETS.build(dict(cfg.train_dataloader.dataset, data_root=image_dir))
    return model.data_preprocessor(default_collate([dataset[i] for i in range(n)]), True)


def seeded_loss(model, inputs, data_samples, seed=0):
    torch.manual_seed(seed)
    np.random.seed(seed)  # the masking ratio is drawn from numpy's RNG, as in the official code
    return model.loss(inputs, data_samples)


def test_loss_is_finite_and_both_views_flow(image_dir):
    model = build()
    data = two_view_batch(model, image_dir)
    views = data['inputs']
    assert isinstance(views, list) and len(views) == 2 and views[0].shape == (4, 3, 32, 32)
    assert not torch.equal(views[0], views[1])  # independently augmented views
    pooled = {}
    model.projector.register_forward_pre_hook(lambda m, args: pooled.setdefault('x', args[0][0]).retain_grad())
    model.train()
    losses = seeded_loss(model, views, data['data_samples'])
    assert set(losses) == {'loss_mage', 'loss_contrastive'}
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
    sum(losses.values()).backward()
    grad = pooled['x'].grad
    assert grad.shape == (8, 64)  # 4 images x 2 views, interleaved (a0, b0, a1, b1, ...)
    assert (grad[0::2].abs().sum(1) > 0).all() and (grad[1::2].abs().sum(1) > 0).all()
    assert model.backbone.blocks[0].attn.qkv.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.tokenizer.parameters())


def test_contrastive_term_changes_the_gradient_and_weight_zero_is_mage(image_dir):
    grads = {}
    data = two_view_batch(build(), image_dir)
    for weight in (0.0, 0.1):
        model = build(weight).train()
        model.parse_losses(seeded_loss(model, data['inputs'], data['data_samples']))[0].backward()
        grads[weight] = {n: p.grad.clone() for n, p in model.backbone.named_parameters() if p.grad is not None}
    qkv = 'blocks.0.attn.qkv.weight'
    assert not torch.allclose(grads[0.0][qkv], grads[0.1][qkv])

    # with weight 0, MAGE-C is plain MAGE on the interleaved views (same masks, same dropout draws)
    cfg = Config.fromfile(CFG).model
    mage = MAGE(backbone=cfg.backbone, neck=cfg.neck, head=cfg.head)
    mage.load_state_dict({k: v for k, v in build(0.0).state_dict().items() if not k.startswith('projector.')})
    mage.train()
    images = torch.stack(data['inputs'], dim=1).flatten(0, 1)
    seeded_loss(mage, images, data['data_samples'])['loss'].backward()
    for name, grad in grads[0.0].items():
        torch.testing.assert_close(dict(mage.backbone.named_parameters())[name].grad, grad, atol=1e-6, rtol=1e-5)


def test_nt_xent_matches_the_definition():
    model = build()
    torch.manual_seed(1)
    z = torch.randn(6, 8)  # 3 images x 2 views, interleaved
    zn = F.normalize(z, dim=1)
    sim = zn @ zn.t() / model.contrastive_head.temperature
    sim.fill_diagonal_(float('-inf'))
    partner = torch.arange(6) ^ 1  # 0<->1, 2<->3, 4<->5
    expected = F.cross_entropy(sim, partner)
    torch.testing.assert_close(model.contrastive_loss(z), expected)
    assert model.contrastive_head.temperature == 0.2 and model.contrastive_weight == 0.1


def test_one_view_is_a_clear_error(image_dir):
    model = build()
    with pytest.raises(ValueError, match='two views'):
        model.loss(torch.rand(2, 3, 32, 32), None)
    with pytest.raises(ValueError, match='pool must be one of'):
        MODELS.build(dict(Config.fromfile(CFG).model, pool='max'))


@pytest.mark.integration
@pytest.mark.slow
def test_tiny_magec_config_trains_through_tools_train(image_dir, tmp_path):
    train = load_tool('train')
    work = str(tmp_path / 'work')
    train.main([CFG, '--work-dir', work, '--cfg-options', f'train_dataloader.dataset.data_root={image_dir}',
                'train_cfg.max_iters=3', 'default_hooks.logger.interval=1', 'default_hooks.checkpoint.interval=3'])
    (scalars, ) = glob.glob(osp.join(work, '*', 'vis_data', 'scalars.json'))
    with open(scalars) as f:
        rows = [json.loads(line) for line in f]
    assert len(rows) == 3 and all(np.isfinite(r['loss_mage']) and np.isfinite(r['loss_contrastive']) for r in rows)
    sd = safe_load(osp.join(work, 'iter_3.pth'), map_location='cpu')['state_dict']  # nothing we read runs code
    assert any(k.startswith('projector.') for k in sd) and any(k.startswith('backbone.blocks.') for k in sd)
