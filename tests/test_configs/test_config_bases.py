"""Shared settings live in one `_base_` file each: the tiny encoder, the MAGE-C views, the classification data.

Each test checks both sides: the value is written in exactly one file under configs/, and every config that
should carry it resolves to that value (so a copy pasted back into a config, or a config that stops using the
base, fails here).
"""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = osp.join(ROOT, 'configs')
TINY_ENCODER = 'configs/_base_/models/mage_vit-tiny_encoder.py'
MAGE_C_VIEWS = 'configs/_base_/datasets/mage-c_views-256px.py'
IMAGENET_CLS = 'configs/_base_/datasets/imagenet_mage-cls-256px.py'
TINY_CLS = 'configs/_base_/datasets/photo-crops-5cls_mage-cls-32px.py'


def files_containing(text):
    hits = []
    for path in sorted(glob.glob(osp.join(CONFIGS, '**', '*.py'), recursive=True)):
        with open(path, encoding='utf-8') as f:
            if text in f.read():
                hits.append(osp.relpath(path, ROOT))
    return hits


def load(rel):
    return Config.fromfile(osp.join(ROOT, rel))


# every config with the tiny MAGE encoder, and where its backbone sits
TINY_BACKBONES = {
    'configs/mage/mage_vit-tiny_1xb8-20iters_photo-crops-32px.py': 'model.backbone',
    'configs/mage/mage-c_vit-tiny_1xb8-20iters_photo-crops-32px.py': 'model.backbone',
    'configs/mage/mage_vit-tiny_1xb32-2000iters_fashion-mnist-32px.py': 'model.backbone',
    'configs/generation/mage-gen_vit-tiny_iter8-temp6_photo-crops-32px.py': 'model.backbone',
    'configs/mage/benchmarks/vit-tiny_1xb8-linear-coslr-2e_photo-crops-5cls-32px.py': 'model.backbone',
    'configs/mage/benchmarks/vit-tiny_1xb8-coslr-2e_photo-crops-5cls-32px.py': 'model.backbone',
    'configs/mage/benchmarks/vit-tiny_1xb64-linear-coslr-8e_fashion-mnist-32px.py': 'model.backbone',
    'configs/detection/vitdet_mask-rcnn_mage-vit-tiny_1xb2-4iters_photo-coco-64px.py': 'model.backbone',
}


def test_tiny_encoder_is_written_once():
    assert files_containing('feedforward_channels=256') == [TINY_ENCODER]
    assert files_containing('token_grid=8') == [TINY_ENCODER]


@pytest.mark.parametrize('rel', sorted(TINY_BACKBONES))
def test_every_tiny_config_has_the_base_encoder(rel):
    encoder = load(TINY_ENCODER).mage_vit_tiny
    backbone = load(rel)
    for key in TINY_BACKBONES[rel].split('.'):
        backbone = backbone[key]
    for key, value in encoder.items():
        assert backbone[key] == value, (rel, key)


def test_tiny_pretraining_and_generation_share_the_network():
    pre = load('configs/mage/mage_vit-tiny_1xb8-20iters_photo-crops-32px.py').model
    gen = load('configs/generation/mage-gen_vit-tiny_iter8-temp6_photo-crops-32px.py').model
    assert (pre.type, gen.type) == ('MAGE', 'MAGEGenerator')
    assert files_containing("type='MAGEPretrainDecoder', num_tokens=64") == ['configs/_base_/models/mage_vit-tiny.py']
    for part in ('backbone', 'neck', 'head'):  # the tokenizer is backbone.tokenizer in both
        assert gen.get(part) == pre.get(part), part


MAGE_C = {
    'configs/mage/mage-c_vit-base-p16_8xb256-amp-coslr-1600e_in1k-256px.py': 256,
    'configs/mage/mage-c_vit-large-p16_8xb256-amp-coslr-1600e_in1k-256px.py': 256,
    'configs/mage/mage-c_vit-tiny_1xb8-20iters_photo-crops-32px.py': 32,
}


def test_mage_c_views_are_written_once():
    assert files_containing("type='ColorJitter'") == [MAGE_C_VIEWS]
    assert files_containing("type='RandomGrayscale'") == [MAGE_C_VIEWS]
    views = load(MAGE_C_VIEWS).view_pipeline
    for rel, size in MAGE_C.items():
        pipeline = load(rel).train_dataloader.dataset.pipeline
        multi = pipeline[1]
        assert multi.type == 'MultiView' and multi.num_views == 2, rel
        got = multi.transforms[0]
        assert got[0].scale == size, rel
        assert [dict(t, scale=None) for t in got[:1]] == [dict(views[0], scale=None)], rel
        assert got[1:] == views[1:], rel


CLS = {
    'configs/mage/benchmarks/vit-base-p16_8xb512-linear-coslr-90e_in1k-256px.py': (IMAGENET_CLS, 512),
    'configs/mage/benchmarks/vit-large-p16_8xb512-linear-coslr-90e_in1k-256px.py': (IMAGENET_CLS, 512),
    'configs/mage/benchmarks/vit-base-p16_8xb128-coslr-100e_in1k-256px.py': (IMAGENET_CLS, 128),
    'configs/mage/benchmarks/vit-large-p16_8xb128-coslr-50e_in1k-256px.py': (IMAGENET_CLS, 128),
    'configs/mage/benchmarks/vit-tiny_1xb8-linear-coslr-2e_photo-crops-5cls-32px.py': (TINY_CLS, 16),
    'configs/mage/benchmarks/vit-tiny_1xb8-coslr-2e_photo-crops-5cls-32px.py': (TINY_CLS, 16),
}


def test_classification_data_is_written_once():
    assert files_containing("type='ResizeEdge', scale=292") == [IMAGENET_CLS]
    assert files_containing("data_prefix='val', pipeline=test_pipeline") == [IMAGENET_CLS]
    assert files_containing("type='ResizeEdge', scale=36") == [TINY_CLS]
    for rel, (base, val_batch) in CLS.items():
        cfg, data = load(rel), load(base)
        assert cfg.val_dataloader.batch_size == val_batch, rel
        assert cfg.test_dataloader == cfg.val_dataloader, rel
        assert dict(cfg.val_dataloader, batch_size=None) == dict(data.val_dataloader, batch_size=None), rel
        train, base_train = cfg.train_dataloader.copy(), data.train_dataloader.copy()
        train.pop('batch_size'), base_train.pop('batch_size', None)
        assert dict(train, dataset=dict(train.dataset, pipeline=None)) == \
            dict(base_train, dataset=dict(base_train.dataset, pipeline=None)), rel
        assert cfg.val_evaluator == data.val_evaluator, rel
