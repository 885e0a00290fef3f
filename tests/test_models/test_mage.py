import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS

from mage_mm.models.algorithms import MAGE
from mage_mm.models.utils import TruncatedGaussianRatio

TINY_CFG = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs', 'mage',
                    'mage_vit-tiny_1xb8-20iters_photo-crops-32px.py')


def build_tiny() -> MAGE:
    cfg = Config.fromfile(TINY_CFG)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def test_ratio_sampler_statistics():
    np.random.seed(0)
    r = TruncatedGaussianRatio().sample(200_000)
    assert r.min() >= 0.5 and r.max() <= 1.0
    assert abs(r.mean() - 0.694) < 0.003 and abs(r.std() - 0.129) < 0.003
    assert abs(np.median(r) - 0.676) < 0.004
    np.testing.assert_allclose(np.quantile(r, [0.05, 0.25, 0.75, 0.95]), [0.517, 0.586, 0.787, 0.932], atol=0.004)


def test_one_ratio_per_iteration():
    torch.manual_seed(0)
    np.random.seed(0)
    model = build_tiny()
    counts = set()
    for _ in range(20):
        out = model.backbone(torch.randint(0, 256, (4, 64)), mask=True)
        per_sample = out.token_all_mask.sum(1)
        assert (per_sample == per_sample[0]).all()  # one ratio for the whole batch
        counts.add(int(per_sample[0]))
    assert len(counts) > 3 and min(counts) >= 32  # the ratio varies between iterations


def test_loss_and_tensor_modes():
    model = build_tiny()
    from mmpretrain.structures import DataSample
    batch = dict(inputs=torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8),
                 data_samples=[DataSample(), DataSample()])
    data = model.data_preprocessor(batch, training=True)
    losses = model(**data, mode='loss')
    assert set(losses) == {'loss'} and torch.isfinite(losses['loss'])
    feats = model(data['inputs'], mode='tensor')
    assert feats[-1].shape == (2, 65, 64)


def test_every_trainable_parameter_gets_a_gradient():
    model = build_tiny()
    model.train()
    x = torch.rand(4, 3, 32, 32)
    model.loss(x, None)['loss'].backward()
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert no_grad == []  # DDP works without find_unused_parameters
    assert all(not p.requires_grad for p in model.tokenizer.parameters())


def test_output_layer_tied_to_detached_embedding():
    model = build_tiny().eval()
    ids = torch.randint(0, 256, (2, 64))
    drop, all_ = model.backbone.sample_masks(2, 64, ratio=0.75)
    emb = model.backbone.token_emb.word_embeddings.weight
    feats = model.neck(*model.backbone(ids, mask=(drop, all_))).detach()
    logits = model.head(feats, emb)
    assert torch.equal(logits, model.head(feats, emb.detach().clone()))  # really the embedding table
    # official: no gradient reaches the table from the output side ...
    assert torch.autograd.grad(logits.sum(), emb, allow_unused=True)[0] is None
    # ... (control: without the detach it would)
    model.head.detach_embedding = False
    assert torch.autograd.grad(model.head(feats, emb).sum(), emb)[0].abs().sum() > 0
    model.head.detach_embedding = True
    # while the input side does train it
    grad_in = torch.autograd.grad(model.backbone(ids, mask=(drop, all_)).latent.sum(), emb)[0]
    assert grad_in.abs().sum() > 0


def test_incompatible_parts_are_rejected():
    cfg = Config.fromfile(TINY_CFG)
    cfg.model.neck.num_tokens = 16
    with pytest.raises(ValueError, match='num_tokens'):
        MODELS.build(cfg.model)
    cfg = Config.fromfile(TINY_CFG)
    cfg.model.backbone.tokenizer.arch = 'parity-tiny'
    with pytest.raises(ValueError, match='codes'):
        MODELS.build(cfg.model)


def test_non_finite_loss_is_an_error():
    model = build_tiny()
    with torch.no_grad():
        model.head.bias.fill_(float('nan'))
    with pytest.raises(FloatingPointError, match='MAGE loss is nan'):
        model.loss(torch.rand(2, 3, 32, 32), None)


def test_overfits_a_fixed_batch():
    """With a codebook spread over real encoder outputs, the loss on one batch falls clearly."""
    from mage_mm.datasets import packaged_photo_paths, random_crops
    torch.manual_seed(0)
    np.random.seed(0)
    model = build_tiny()
    images, _ = random_crops(packaged_photo_paths(), 8, 32, seed=0)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    with torch.no_grad():
        z = model.tokenizer.encode_latent(x).permute(0, 2, 3, 1).reshape(-1, 64)
        model.tokenizer.quantize.embedding.weight.copy_(z[torch.randperm(len(z))[:256]])
    assert len(model.tokenize(x).unique()) > 50
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-3)
    history = []
    for _ in range(100):  # fresh random masks and ratio every step, as in training
        loss = model.loss(x, None)['loss']
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(loss.item())
    first, last = np.mean(history[:10]), np.mean(history[-10:])
    # the output layer is tied to a *detached* 64-d table, so a tiny model learns slowly; 0.5 nats is clear
    assert last < first - 0.5, (first, last)
