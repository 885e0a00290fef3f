"""Class-conditional MAGE (MAGECond, the decoder's class embedding): init, freezing, label dropout, errors."""
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

import mage_mm.register  # noqa: F401  registers the mmpretrain components
from mage_mm.models.algorithms import MAGECond
from mage_mm.models.necks import ClassEmbedding, MAGEPretrainDecoder

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
UNCOND_CFG = osp.join(ROOT, 'configs', 'mage', 'mage_vit-tiny_1xb8-20iters_photo-crops-32px.py')
COND_CFG = osp.join(ROOT, 'configs', 'mage', 'mage-cond_vit-tiny_1xb8-20iters_photo-crops-5cls-32px.py')


def build(cfg_path, **overrides):
    cfg = Config.fromfile(cfg_path)
    cfg.model.update(overrides)
    model = MODELS.build(dict(cfg.model, _scope_='mmpretrain'))
    model.init_weights()
    return model


@pytest.fixture(scope='module')
def uncond_ckpt(tmp_path_factory):
    """A randomly initialised *unconditional* tiny MAGE saved like a Runner checkpoint, and the model."""
    torch.manual_seed(0)
    model = build(UNCOND_CFG)
    # make the head bias and positions non-trivial so that equality below is not vacuous
    with torch.no_grad():
        model.head.bias.normal_()
    path = str(tmp_path_factory.mktemp('uncond') / 'mage_tiny.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict(note='random init')), path)
    return path, model.eval()


def samples(labels):
    return [DataSample().set_gt_label(int(v)) for v in labels]


def test_registered_and_key_layout(uncond_ckpt):
    path, uncond = uncond_ckpt
    cond = build(COND_CFG, init_checkpoint=path)
    assert isinstance(cond, MAGECond) and isinstance(cond.neck, MAGEPretrainDecoder)
    extra = set(cond.state_dict()) - set(uncond.state_dict())
    assert extra == {'neck.class_embed.weight'} and set(uncond.state_dict()) <= set(cond.state_dict())
    assert cond.state_dict()['neck.class_embed.weight'].shape == (5 + 1, 32)
    assert cond.null_class == 5
    assert torch.count_nonzero(cond.neck.class_embed.weight) == 0  # zero init


def test_fresh_conditional_model_equals_unconditional(uncond_ckpt):
    """Zero-initialised class embedding: the same logits, hence the same decoded tokens, for every class."""
    path, uncond = uncond_ckpt
    cond = build(COND_CFG, init_checkpoint=path).eval()
    torch.manual_seed(1)
    ids = torch.randint(0, 256, (6, 64))
    drop = torch.zeros(6, 65, dtype=torch.bool)
    all_mask = torch.zeros(6, 65, dtype=torch.bool)
    all_mask[:, 1:] = torch.rand(6, 64) < 0.6
    with torch.no_grad():
        ref = uncond.predict_logits(ids, drop, all_mask)
        for labels in (torch.tensor([0, 1, 2, 3, 4, 5]), None):
            out = cond.predict_logits(ids, drop, all_mask, labels=labels)
            assert torch.equal(out, ref)
    # a trained embedding does change them
    with torch.no_grad():
        cond.neck.class_embed.weight.normal_()
        out = cond.predict_logits(ids, drop, all_mask, labels=torch.tensor([0, 1, 2, 3, 4, 5]))
    assert not torch.allclose(out, ref)


def test_strict_init_errors(uncond_ckpt, tmp_path):
    path, uncond = uncond_ckpt
    sd = dict(uncond.state_dict())
    sd.pop('head.bias')
    bad = str(tmp_path / 'missing.pth')
    torch.save(dict(state_dict=sd), bad)
    with pytest.raises(ValueError, match=r"1 of the model's \d+ keys are missing \(head.bias\)"):
        build(COND_CFG, init_checkpoint=bad)
    sd = dict(uncond.state_dict(), **{'neck.extra': torch.zeros(1)})
    torch.save(dict(state_dict=sd), bad)
    with pytest.raises(ValueError, match=r'1 checkpoint keys are not in the model \(neck.extra\)'):
        build(COND_CFG, init_checkpoint=bad)
    # a conditional checkpoint with another class count: a size mismatch naming the key
    sd = dict(uncond.state_dict(), **{'neck.class_embed.weight': torch.zeros(11, 32)})
    torch.save(dict(state_dict=sd), bad)
    with pytest.raises(ValueError, match=r'neck.class_embed.weight: checkpoint \(11, 32\) vs model \(6, 32\)'):
        build(COND_CFG, init_checkpoint=bad)
    # an official (unconverted) file: told to convert it
    torch.save(dict(model={'blocks.0.norm1.weight': torch.zeros(4), 'token_emb.position_ids': torch.zeros(1)}),
               bad)
    with pytest.raises(ValueError, match='mage_to_mmpretrain'):
        build(COND_CFG, init_checkpoint=bad)


def test_conditional_checkpoint_reloads(uncond_ckpt, tmp_path):
    path, _ = uncond_ckpt
    cond = build(COND_CFG, init_checkpoint=path)
    with torch.no_grad():
        cond.neck.class_embed.weight.normal_()
    cpath = str(tmp_path / 'cond.pth')
    torch.save(dict(state_dict=cond.state_dict()), cpath)
    again = build(COND_CFG, init_checkpoint=cpath)
    assert torch.equal(again.neck.class_embed.weight, cond.neck.class_embed.weight)


def test_missing_class_count_and_bad_labels_are_clear():
    cfg = Config.fromfile(COND_CFG)
    model_cfg = dict(cfg.model, _scope_='mmpretrain', num_classes=None)
    model_cfg['neck'] = {k: v for k, v in model_cfg['neck'].items() if k != 'num_classes'}
    with pytest.raises(ValueError, match='MAGECond needs the number of classes'):
        MODELS.build(model_cfg)
    with pytest.raises(ValueError, match=r'model.num_classes=7 but model.neck.num_classes=5'):
        MODELS.build(dict(cfg.model, _scope_='mmpretrain', num_classes=7))
    with pytest.raises(ValueError, match='num_classes must be a positive integer'):
        ClassEmbedding(0, 8)
    with pytest.raises(ValueError, match='p_uncond'):
        MODELS.build(dict(cfg.model, _scope_='mmpretrain', p_uncond=1.5))

    model = build(COND_CFG)
    x = torch.rand(2, 3, 32, 32)
    with pytest.raises(ValueError, match=r'class id 5, out of range: the model has num_classes=5 \(ids 0..4\)'):
        model.loss(x, samples([1, 5]))  # the null class is not a dataset label
    with pytest.raises(ValueError, match='class id -1'):
        model.loss(x, samples([1, -1]))
    with pytest.raises(ValueError, match='no gt_label'):
        model.loss(x, [DataSample(), DataSample()])
    with pytest.raises(ValueError, match=r'class id 6, out of range.*or the null class 5'):
        model.neck.class_embed(torch.tensor([6]))
    with pytest.raises(ValueError, match='integer class ids'):
        model.neck.class_embed(torch.tensor([1.0]))
    # an unconditional decoder refuses labels instead of ignoring them
    uncond = build(UNCOND_CFG)
    with pytest.raises(ValueError, match='unconditional'):
        uncond.predict_logits(torch.zeros(1, 64, dtype=torch.long), torch.zeros(1, 65, dtype=torch.bool),
                              torch.ones(1, 65, dtype=torch.bool).index_fill_(1, torch.tensor([0]), False),
                              labels=torch.tensor([0]))


def test_frozen_encoder_gets_no_gradient_and_does_not_change(uncond_ckpt):
    from mmengine.optim import build_optim_wrapper
    path, _ = uncond_ckpt
    torch.manual_seed(0)
    model = build(COND_CFG, init_checkpoint=path)
    cfg = Config.fromfile(COND_CFG)
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    assert not model.backbone.training and model.neck.training  # frozen encoder: eval mode (no dropout)
    # one explicit backward: gradients reach the decoder, the class embedding and the head, not the encoder
    model.loss(torch.rand(4, 3, 32, 32), samples([0, 1, 2, 3]))['loss'].backward()
    assert all(p.grad is None for p in model.backbone.parameters())
    assert model.neck.class_embed.weight.grad is not None and model.neck.class_embed.weight.grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.head.parameters())
    model.zero_grad()
    for step in range(3):  # the real optimiser step (mmengine OptimWrapper, the config's AdamW)
        data = dict(inputs=[torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)],
                    data_samples=samples([0, 1, 2, 3]))
        model.train_step(data, optim)
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith(('neck.', 'head.')) for k in changed), sorted(changed)
    assert 'neck.class_embed.weight' in changed
    assert not any(p.requires_grad for p in model.backbone.parameters())


def test_train_encoder_option_trains_it(uncond_ckpt):
    from mmengine.optim import build_optim_wrapper
    path, _ = uncond_ckpt
    model = build(COND_CFG, init_checkpoint=path, train_encoder=True)
    optim = build_optim_wrapper(model, Config.fromfile(COND_CFG).optim_wrapper)
    before = model.backbone.blocks[0].attn.qkv.weight.clone()
    model.train()
    assert model.backbone.training
    model.train_step(dict(inputs=[torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)],
                          data_samples=samples([0, 1, 2, 3])), optim)
    assert not torch.equal(before, model.backbone.blocks[0].attn.qkv.weight)


def test_label_dropout_rate():
    """n = 20000 Bernoulli(p) draws: the null fraction lies within 5 standard deviations of p.

    For p = 0.1 the standard deviation of the fraction is sqrt(p (1 - p) / n) = 0.0021, so the bound is
    |f - p| < 0.0106; a correct implementation fails with probability < 1e-6 (and the seed is fixed).
    """
    model = build(COND_CFG, p_uncond=0.1)
    n = 20000
    labels = torch.arange(n) % 5
    gen = torch.Generator().manual_seed(0)
    dropped = model.drop_labels(labels, generator=gen)
    is_null = dropped == model.null_class
    frac = is_null.float().mean().item()
    bound = 5 * math.sqrt(0.1 * 0.9 / n)
    assert abs(frac - 0.1) < bound, (frac, bound)
    assert torch.equal(dropped[~is_null], labels[~is_null])  # kept labels are untouched
    # per class too (each class has n / 5 draws)
    for c in range(5):
        f = is_null[labels == c].float().mean().item()
        assert abs(f - 0.1) < 5 * math.sqrt(0.1 * 0.9 / (n / 5)), (c, f)
    # through the loss (torch's global RNG): the logged fraction follows p
    torch.manual_seed(0)
    model_all = build(COND_CFG, p_uncond=1.0)
    assert float(model_all.loss(torch.rand(4, 3, 32, 32), samples([0, 1, 2, 3]))['null_fraction']) == 1.0
    model_none = build(COND_CFG, p_uncond=0.0)
    assert float(model_none.loss(torch.rand(4, 3, 32, 32), samples([0, 1, 2, 3]))['null_fraction']) == 0.0


def test_token_injection_option(uncond_ckpt):
    path, uncond = uncond_ckpt
    cond = build(COND_CFG, init_checkpoint=path, neck=dict(num_classes=5, class_injection='token')).eval()
    ids = torch.randint(0, 256, (2, 64))
    drop = torch.zeros(2, 65, dtype=torch.bool)
    all_mask = torch.zeros(2, 65, dtype=torch.bool)
    all_mask[:, 1:30] = True
    with torch.no_grad():
        out = cond.predict_logits(ids, drop, all_mask, labels=torch.tensor([0, 5]))
    assert out.shape == uncond.predict_logits(ids, drop, all_mask).shape == (2, 65, 258)
    with pytest.raises(ValueError, match='class_injection'):
        MAGEPretrainDecoder(num_tokens=4, in_channels=8, embed_dims=8, num_layers=1, num_heads=2, num_classes=2,
                            class_injection='cross')
