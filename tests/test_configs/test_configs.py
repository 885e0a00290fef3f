"""Configs: they load, full-size models match the official sizes, and the recipe's optimizer groups."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmpretrain.registry import MODELS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PRETRAIN = {
    'b': 'configs/mage/mage_vit-base-p16_8xb512-amp-coslr-1600e_in1k-256px.py',
    'l': 'configs/mage/mage_vit-large-p16_8xb512-amp-coslr-1600e_in1k-256px.py',
}
TINY = 'configs/mage/mage_vit-tiny_1xb8-20iters_photo-crops-32px.py'


def test_pretrain_configs_load():
    for path in list(PRETRAIN.values()) + [TINY]:
        cfg = Config.fromfile(osp.join(ROOT, path))
        assert cfg.model.type == 'MAGE' and 'mage_mm.register' in cfg.custom_imports.imports


# official trainable parameters (MAGE.md section b) minus the trainable legacy tensors we do not create
# (cls_token, mask_token, patch_embed.proj, decoder_pred; the sin-cos tables were frozen there)
@pytest.mark.parametrize('arch,official_trainable,legacy', [
    ('b', 146_079_465, 768 + 768 + (768 * 3 * 256 + 768) + (768 * 768 + 768)),
    ('l', 409_365_225, 1024 + 1024 + (1024 * 3 * 256 + 1024) + (768 * 1024 + 768)),
])
def test_full_size_parameter_counts(arch, official_trainable, legacy):
    cfg = Config.fromfile(osp.join(ROOT, PRETRAIN[arch]))
    cfg.model.backbone.tokenizer.init_cfg = None
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == official_trainable - legacy
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper' and cfg.optim_wrapper.clip_grad.max_norm == 3.0
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(1.5e-4 * 4096 / 256)
    assert cfg.train_dataloader.batch_size * 8 == cfg.auto_scale_lr.base_batch_size == 4096


def test_official_weight_decay_groups():
    """AdamW decay on every trainable tensor except 1-D ones and biases (timm 0.3.2 add_weight_decay)."""
    full = Config.fromfile(osp.join(ROOT, PRETRAIN['b']))
    model = MODELS.build(Config.fromfile(osp.join(ROOT, TINY)).model)
    optim_cfg = full.optim_wrapper.copy()
    optim_cfg.type = 'OptimWrapper'  # AmpOptimWrapper needs a GPU; the groups are the constructor's
    optim_cfg.pop('loss_scale')
    wrapper = build_optim_wrapper(model, optim_cfg)
    decay_of = {}
    for group in wrapper.optimizer.param_groups:
        for p in group['params']:
            decay_of[id(p)] = group['weight_decay']
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        expected = 0.0 if (p.ndim == 1 or name.endswith('.bias') or name.endswith('head.bias')) else 0.05
        assert decay_of[id(p)] == pytest.approx(expected), name
    names = dict(model.named_parameters())
    assert decay_of[id(names['head.bias'])] == 0.0  # (1, 1, vocab) but a bias
    assert decay_of[id(names['backbone.token_emb.word_embeddings.weight'])] == 0.05
    assert decay_of[id(names['neck.decoder_pos_embed'])] == 0.05
    sched = full.param_scheduler
    assert sched[0].type == 'LinearLR' and sched[0].end == 40 and sched[0].convert_to_iter_based
    assert sched[1].type == 'CosineAnnealingLR' and sched[1].end == 1600 and sched[1].eta_min == 0.0
    assert full.train_cfg.max_epochs == 1600


def test_pretrain_pipeline_is_official():
    cfg = Config.fromfile(osp.join(ROOT, PRETRAIN['b']))
    crop = cfg.train_dataloader.dataset.pipeline[1]
    assert crop.type == 'RandomResizedCrop' and crop.scale == 256 and tuple(crop.crop_ratio_range) == (0.2, 1.0)
    pre = cfg.model.data_preprocessor
    assert pre.mean == [0., 0., 0.] and pre.std == [255., 255., 255.] and pre.to_rgb


def test_every_config_parses():
    paths = [p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True) if '_base_' not in p]
    assert paths
    for path in paths:
        Config.fromfile(path)
