"""Detection transfer: MAGEViTDet (window attention, interpolated positions), the simple feature pyramid,
layer-wise lr decay through the detector, and the tiny Mask R-CNN config with the real mmdet and mmcv ops
on real-photo composites."""
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from tool_utils import load_tool

import mage_mm.models.detection  # noqa: F401  registers MAGEViTDet / SimpleFeaturePyramid in mmdet
from mage_mm.models.backbones import MAGEViT
from mage_mm.models.backbones.mage_vitdet import MAGEViTDet
from mage_mm.models.necks.simple_fpn import SimpleFeaturePyramid

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = osp.join(ROOT, 'configs', 'detection', 'vitdet_mask-rcnn_mage-vit-tiny_1xb2-4iters_photo-coco-64px.py')
FULL = osp.join(ROOT, 'configs', 'detection', 'vitdet_mask-rcnn_mage-vit-base-p16_16xb4-lsj-100e_coco-1024px.py')
ARCH = dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64)
VIT_KW = dict(arch=ARCH, codebook_size=256, num_legacy_class_ids=1, fake_class_id=256, token_grid=8,
              tokenizer=dict(type='MAGEVQGAN', arch='tiny'))


pytestmark = pytest.mark.usefixtures('mmdet_scope')  # tests/conftest.py


@pytest.fixture(scope='module')
def coco_root(tmp_path_factory):
    # the README's command for data/tiny_coco: real-photo composites with exact annotations
    return load_tool('dataset_converters/prepare_photo_coco').make_photo_coco(str(tmp_path_factory.mktemp('tiny_coco')))


def reference_window_forward(det: MAGEViTDet, images: torch.Tensor) -> torch.Tensor:
    """The same network written as global attention with a block-diagonal mask (no class slot): a token
    attends to the tokens of its own window only. Window membership is computed from coordinates."""
    ids, grid = det.tokenize(images)
    x = det.token_emb(det._with_class_slot(ids), det._position_embeddings(grid))[:, 1:]
    rows, cols = torch.meshgrid(torch.arange(grid[0]), torch.arange(grid[1]), indexing='ij')
    window = (rows // det.window_size * 1000 + cols // det.window_size).flatten()
    same_window = (window[:, None] == window[None, :])[None, None]
    for i, block in enumerate(det.blocks):
        x = block(x, attn_mask=None if i in det.global_indices else same_window)
    B, _, C = x.shape
    return det.norm(x).transpose(1, 2).reshape(B, C, *grid)


@pytest.mark.parametrize('size', [48, 40])  # 12x12 tokens: 4x4 windows (exact) and 10x10: padded windows
def test_window_attention_equals_block_diagonal_global_attention(size):
    torch.manual_seed(0)
    det = MAGEViTDet(**VIT_KW, window_size=4, global_indices=[1], keep_class_slot=False, drop_path_rate=0.0)
    det.init_weights()
    det.eval()
    images = torch.rand(2, 3, size, size)
    with torch.no_grad():
        out = det(images)[0]
        ref = reference_window_forward(det, images)
    assert out.shape == (2, 32, size // 4, size // 4)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_one_window_over_the_grid_is_the_plain_mage_encoder():
    """With the window covering the whole grid (and the class slot kept) MAGEViTDet is MAGEViT."""
    torch.manual_seed(0)
    det = MAGEViTDet(**VIT_KW, window_size=16, global_indices=[], drop_path_rate=0.0)
    det.init_weights()
    vit = MAGEViT(**VIT_KW, out_type='featmap', interpolate_pos=True)
    vit.load_state_dict(det.state_dict(), strict=True)  # same parameter names as MAGEViT
    det.eval(), vit.eval()
    images = torch.rand(2, 3, 64, 64)  # 16x16 tokens, position table 8x8 interpolated
    with torch.no_grad():
        torch.testing.assert_close(det(images)[0], vit(images)[0], atol=1e-5, rtol=1e-5)
    # with several windows the class slot copies are averaged back: the output differs from global attention
    det.window_size = 8
    with torch.no_grad():
        assert not torch.allclose(det(images)[0], vit(images)[0], atol=1e-4)


def test_mage_checkpoint_initialises_the_backbone(tiny_mage_ckpt):
    from mmdet.registry import MODELS
    cfg = Config.fromfile(TINY).model.backbone
    assert 'init_cfg' not in cfg.tokenizer  # one prefix: backbone.* of a MAGE checkpoint holds the tokenizer too
    cfg.init_cfg.checkpoint = tiny_mage_ckpt
    det = MODELS.build(cfg)
    det.init_weights()
    pre = torch.load(tiny_mage_ckpt, weights_only=True)['state_dict']
    for k, v in det.state_dict().items():
        assert torch.equal(v, pre['backbone.' + k]), k
    assert all(not p.requires_grad for p in det.tokenizer.parameters())
    with torch.no_grad():
        pos = det._position_embeddings((16, 16))  # 64 px with the factor-4 tokenizer
    assert pos.shape == (1, 1 + 256, 64)
    torch.testing.assert_close(pos[0, 0], det.token_emb.position_embeddings.weight[0])  # class slot untouched


def test_simple_feature_pyramid_levels():
    fpn = SimpleFeaturePyramid(in_channels=64, out_channels=16)
    outs = fpn((torch.rand(2, 64, 8, 8), ))
    assert [o.shape[-1] for o in outs] == [32, 16, 8, 4, 2] and all(o.shape[1] == 16 for o in outs)
    assert fpn.stages[0][0].out_channels == 32 and fpn.stages[0][-1].out_channels == 16  # 4x: two deconvs
    tiny = SimpleFeaturePyramid(in_channels=64, out_channels=16, scale_factors=[1.0, 0.5, 0.25, 0.125])
    assert [o.shape[-1] for o in tiny((torch.rand(1, 64, 16, 16), ))] == [16, 8, 4, 2, 1]
    with pytest.raises(ValueError, match='powers of 2'):
        SimpleFeaturePyramid(in_channels=64, scale_factors=[3.0])


def test_layer_decay_through_the_detector():
    from mmdet.registry import MODELS
    from mmengine.optim import build_optim_wrapper
    cfg = Config.fromfile(TINY)
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    groups = build_optim_wrapper(model, cfg.optim_wrapper).optimizer.param_groups
    scales = {g['param_name']: g['lr_scale'] for g in groups}
    decay = cfg.optim_wrapper.paramwise_cfg.layer_decay_rate
    assert decay == 0.7
    assert scales['backbone.token_emb.word_embeddings.weight'] == pytest.approx(decay**3)
    assert scales['backbone.blocks.0.attn.qkv.weight'] == pytest.approx(decay**2)
    assert scales['backbone.blocks.1.mlp.fc1.weight'] == pytest.approx(decay)
    assert scales['backbone.norm.weight'] == 1.0
    assert all(v == 1.0 for k, v in scales.items() if not k.startswith('backbone.'))
    assert not any(k.startswith('backbone.tokenizer.') for k in scales)
    wd = {g['param_name']: g['weight_decay'] for g in groups}
    assert wd['backbone.token_emb.position_embeddings.weight'] == 0.0
    assert wd['backbone.blocks.0.attn.qkv.weight'] == 0.1 and wd['backbone.blocks.0.attn.qkv.bias'] == 0.0


def test_tiny_mask_rcnn_loss_and_predict(coco_root, tiny_mage_ckpt):
    from mmdet.registry import DATASETS, MODELS
    from mmengine.dataset import pseudo_collate
    cfg = Config.fromfile(TINY)
    cfg.model.backbone.init_cfg.checkpoint = tiny_mage_ckpt
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    train_set = DATASETS.build(dict(cfg.train_dataloader.dataset, data_root=coco_root + '/'))
    assert len(train_set) == 4
    data = model.data_preprocessor(pseudo_collate([train_set[0], train_set[1]]), True)
    assert data['inputs'].shape == (2, 3, 64, 64) and 0 <= data['inputs'].min() and data['inputs'].max() <= 1
    model.train()
    losses = model.loss(data['inputs'], data['data_samples'])
    for key in ('loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox', 'loss_mask'):
        assert key in losses
    total, _ = model.parse_losses(losses)
    assert torch.isfinite(total)
    total.backward()
    assert model.backbone.blocks[0].attn.qkv.weight.grad.abs().sum() > 0
    assert model.backbone.token_emb.position_embeddings.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.backbone.tokenizer.parameters())

    val_set = DATASETS.build(dict(cfg.val_dataloader.dataset, data_root=coco_root + '/'))
    model.eval()
    with torch.no_grad():
        data = model.data_preprocessor(pseudo_collate([val_set[0]]), False)
        results = model.predict(data['inputs'], data['data_samples'])
    pred = results[0].pred_instances
    assert pred.bboxes.shape[1] == 4 and len(pred.scores) == len(pred.labels) == len(pred.masks) > 0
    assert pred.masks.shape[-2:] == (96, 96)  # rescaled to the original image
    assert pred.labels.max() < 2


def test_full_config_is_the_vitdet_recipe():
    cfg = Config.fromfile(FULL)
    bb = cfg.model.backbone
    assert bb.type == 'MAGEViTDet' and bb.arch == 'b' and bb.window_size == 16
    assert bb.global_indices == [2, 5, 8, 11] and bb.drop_path_rate == 0.1
    assert bb.init_cfg.prefix == 'backbone.' and 'init_cfg' not in bb.tokenizer  # backbone.tokenizer.* of the file
    assert cfg.model.data_preprocessor.std == [255., 255., 255.]
    assert cfg.model.data_preprocessor.batch_augments[0].size == (1024, 1024)
    assert cfg.train_dataloader.batch_size * 16 == cfg.auto_scale_lr.base_batch_size == 64
    assert cfg.train_cfg.max_iters == 184375 and cfg.optim_wrapper.optimizer.lr == 1e-4
    assert cfg.optim_wrapper.paramwise_cfg.layer_decay_rate == 0.7
    assert cfg.model.neck.type == 'SimpleFeaturePyramid' and cfg.model.neck.scale_factors == [4.0, 2.0, 1.0, 0.5]
    assert 'mage_mm.models.detection' in cfg.custom_imports.imports


@pytest.mark.integration
@pytest.mark.slow
def test_tiny_config_trains_and_evaluates_through_tools_train(coco_root, tiny_mage_ckpt, tmp_path):
    """mmdet's own loops: LSJ pipeline, 2 iterations, then COCO bbox/segm evaluation (pycocotools)."""
    import glob
    train = load_tool('train')
    work = str(tmp_path / 'work')
    ann = osp.join(coco_root, 'annotations', 'val.json')
    train.main([TINY, '--work-dir', work, '--cfg-options', f'model.backbone.init_cfg.checkpoint={tiny_mage_ckpt}',
                *[f'{loader}.dataset.data_root={coco_root}/' for loader in ('train_dataloader', 'val_dataloader',
                                                                              'test_dataloader')],
                f'val_evaluator.ann_file={ann}', f'test_evaluator.ann_file={ann}', 'train_cfg.max_iters=2',
                'train_cfg.val_interval=2', 'default_hooks.checkpoint.interval=2'])
    (scalars, ) = glob.glob(osp.join(work, '*', 'vis_data', 'scalars.json'))
    with open(scalars) as f:
        rows = [json.loads(line) for line in f]
    train_rows = [r for r in rows if 'loss_mask' in r]
    assert len(train_rows) == 2 and all(np.isfinite(r['loss']) for r in train_rows)
    (val, ) = [r for r in rows if 'coco/bbox_mAP' in r]
    assert 'coco/segm_mAP' in val and val['coco/bbox_mAP'] >= 0  # evaluated (an untrained model scores ~0)
    assert osp.isfile(osp.join(work, 'iter_2.pth'))
