"""Linear-probe and fine-tune benchmarks: tiny configs through tools/train.py and tools/test.py on
labelled real photo crops, frozen parts, layer-wise lr decay, the official data path and LARS rule."""
import glob
import json
import math
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmpretrain.registry import DATASETS, MODELS
from parity_utils import backbone_cfg, tokenizer_cfg
from tool_utils import load_tool

from mage_mm.converters import convert_official
from mage_mm.datasets import RandomResizedCropNoRetry
from mage_mm.engine import MAGELARS
from mage_mm.utils.checkpoint import safe_load

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BENCH = osp.join(ROOT, 'configs', 'mage', 'benchmarks')
LP_TINY = osp.join(BENCH, 'vit-tiny_1xb8-linear-coslr-2e_photo-crops-5cls-32px.py')
FT_TINY = osp.join(BENCH, 'vit-tiny_1xb8-coslr-2e_photo-crops-5cls-32px.py')
LP_B = osp.join(BENCH, 'vit-base-p16_8xb512-linear-coslr-90e_in1k-256px.py')
FT_B = osp.join(BENCH, 'vit-base-p16_8xb128-coslr-100e_in1k-256px.py')
NUM_CLASSES = 5


pytestmark = pytest.mark.usefixtures('mmpretrain_scope')  # tests/conftest.py


def data_options(root):
    return [f'{loader}.dataset.data_root={root}' for loader in ('train_dataloader', 'val_dataloader',
                                                                 'test_dataloader')]


def ckpt_options(ckpt):
    return [f'model.backbone.init_cfg.checkpoint={ckpt}']  # backbone.* holds the tokenizer too


def val_accuracies(work):
    """(top1, top5) of every validation during training, from the run's scalars.json."""
    (log, ) = glob.glob(osp.join(work, '*', 'vis_data', 'scalars.json'))
    with open(log) as f:
        rows = [json.loads(line) for line in f]
    return [(r['accuracy/top1'], r['accuracy/top5']) for r in rows if 'accuracy/top1' in r]


def train_and_test(config, work, labelled_photo_root, tiny_mage_ckpt):
    load_tool('train').main([config, '--work-dir', work, '--cfg-options', *ckpt_options(tiny_mage_ckpt),
                             *data_options(labelled_photo_root)])
    train_acc = val_accuracies(work)
    assert len(train_acc) == 2, 'one validation per epoch expected'
    metrics = load_tool('test').main([config, osp.join(work, 'epoch_2.pth'), '--work-dir', work + '_test',
                                      '--cfg-options', *data_options(labelled_photo_root)])
    top1, top5 = metrics['accuracy/top1'], metrics['accuracy/top5']
    assert (top1, top5) == train_acc[-1]  # the saved model evaluates the same
    assert 0.0 <= top1 <= top5 == 100.0  # 5 classes: top-5 covers them all
    return safe_load(osp.join(work, 'epoch_1.pth'))['state_dict'], safe_load(osp.join(work,
                                                                                     'epoch_2.pth'))['state_dict']


@pytest.mark.integration
@pytest.mark.slow
def test_linear_probe_train_and_test(labelled_photo_root, tiny_mage_ckpt, tmp_path):
    epoch1, epoch2 = train_and_test(LP_TINY, str(tmp_path / 'lp'), labelled_photo_root, tiny_mage_ckpt)
    pre = safe_load(tiny_mage_ckpt)['state_dict']
    # the encoder and the tokenizer are the pretraining weights, bit for bit, after training
    for k, v in epoch2.items():
        if k.startswith('backbone.tokenizer.'):
            assert torch.equal(v, pre[k]), k  # one prefix in the pretraining and the probe checkpoints
        elif k.startswith('backbone.') and k in pre:
            assert torch.equal(v, pre[k]), k
    assert 'backbone.norm.weight' not in epoch2  # global pool: no final norm
    assert torch.all(epoch2['backbone.fc_norm.weight'] == 1) and torch.all(epoch2['backbone.fc_norm.bias'] == 0)
    # BatchNorm without affine: only running statistics, which training updated
    assert {k for k in epoch2 if k.startswith('neck.')} == {'neck.bn.running_mean', 'neck.bn.running_var',
                                                           'neck.bn.num_batches_tracked'}
    assert int(epoch2['neck.bn.num_batches_tracked']) == 6  # 24 images, batch 8, 2 epochs
    assert not torch.equal(epoch1['head.fc.weight'], epoch2['head.fc.weight'])


@pytest.mark.integration
@pytest.mark.slow
def test_finetune_train_and_test(labelled_photo_root, tiny_mage_ckpt, tmp_path):
    epoch1, epoch2 = train_and_test(FT_TINY, str(tmp_path / 'ft'), labelled_photo_root, tiny_mage_ckpt)
    pre = safe_load(tiny_mage_ckpt)['state_dict']
    for k, v in epoch2.items():
        if k.startswith('backbone.tokenizer.'):
            assert torch.equal(v, pre[k]), k
    for k in ('backbone.token_emb.word_embeddings.weight', 'backbone.blocks.0.attn.qkv.weight',
              'backbone.blocks.1.mlp.fc2.weight'):
        assert not torch.equal(epoch2[k], pre[k]), f'{k} should be fine-tuned'
    assert not torch.equal(epoch1['backbone.fc_norm.weight'], epoch2['backbone.fc_norm.weight'])


def build_tiny_classifier(config, tiny_mage_ckpt):
    cfg = Config.fromfile(config)
    cfg.model.backbone.init_cfg.checkpoint = tiny_mage_ckpt
    model = MODELS.build(cfg.model)
    model.init_weights()
    return cfg, model


def real_batch(cfg, root, n=8):
    dataset = DATASETS.build(dict(cfg.train_dataloader.dataset, data_root=root))
    from mmengine.dataset import default_collate
    return default_collate([dataset[i] for i in range(n)])


def test_linear_probe_frozen_parts_and_embedding_dropout(labelled_photo_root, tiny_mage_ckpt):
    cfg, model = build_tiny_classifier(LP_TINY, tiny_mage_ckpt)
    cfg.optim_wrapper.optimizer.lr = 1.0  # a large step: any leak would show
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    model.train()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {'head.fc.weight', 'head.fc.bias'}
    assert model.neck.bn.weight is None and model.neck.bn.bias is None and not model.neck.bn.affine
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train_step(real_batch(cfg, labelled_photo_root), optim)
    assert all(p.grad is None for n, p in model.named_parameters() if n not in trainable)
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {'head.fc.weight', 'head.fc.bias', 'neck.bn.running_mean', 'neck.bn.running_var',
                       'neck.bn.num_batches_tracked'}
    # official: the frozen encoder follows train(), so its token-embedding dropout 0.1 stays active while
    # the blocks have no dropout; the tokenizer is pinned to eval
    vit = model.backbone
    assert vit.token_emb.training and vit.token_emb.dropout.p == 0.1
    assert all(m.p == 0.0 for m in vit.blocks.modules() if isinstance(m, torch.nn.Dropout))
    assert not vit.tokenizer.training
    images = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(vit(images)[0], vit(images)[0])  # embedding dropout in train mode
        vit.eval()
        assert torch.equal(vit(images)[0], vit(images)[0])


def test_layer_decay_multipliers_of_the_finetune_configs():
    for config, depth, decay in ((FT_B, 12, 0.65), (osp.join(BENCH, 'vit-large-p16_8xb128-coslr-50e_in1k-256px.py'),
                                                      24, 0.75)):
        cfg = Config.fromfile(config)
        # the recipe's depth with a narrow width, so that building is cheap; random tokenizer
        cfg.model.backbone.arch = dict(embed_dims=32, num_layers=depth, num_heads=2, feedforward_channels=64)
        cfg.model.backbone.tokenizer = dict(type='MAGEVQGAN', arch='tiny')
        cfg.model.backbone.init_cfg = None
        cfg.model.head.in_channels = 32
        model = MODELS.build(cfg.model)
        optim_cfg = dict(cfg.optim_wrapper, type='OptimWrapper')  # AmpOptimWrapper refuses CPU
        optim_cfg.pop('loss_scale')
        groups = build_optim_wrapper(model, optim_cfg).optimizer.param_groups
        lr = cfg.optim_wrapper.optimizer.lr
        assert math.isclose(lr, 2.5e-4 * 1024 / 256)
        names = set()
        for g in groups:
            if 'param_name' not in g:
                continue
            name = g['param_name']
            names.add(name)
            if name.startswith('backbone.token_emb.'):
                expected = decay**(depth + 1)
            elif name.startswith('backbone.blocks.'):
                expected = decay**(depth - int(name.split('.')[2]))
            else:
                expected = 1.0
            assert math.isclose(g['lr_scale'], expected, rel_tol=1e-9), name
            assert math.isclose(g['lr'], lr * expected, rel_tol=1e-9), name
            # official: no weight decay on 1-D tensors, decay on every matrix incl. both embedding tables
            assert g['weight_decay'] == (0.05 if g['params'][0].ndim > 1 else 0.0), name
        assert not any(n.startswith('backbone.tokenizer.') for n in names)  # frozen: not optimised
        assert {'backbone.token_emb.word_embeddings.weight', 'backbone.token_emb.position_embeddings.weight',
                'backbone.fc_norm.weight', 'head.fc.weight'} <= names


def test_full_configs_are_the_official_protocols():
    lp, ft = Config.fromfile(LP_B), Config.fromfile(FT_B)
    lp_l = Config.fromfile(osp.join(BENCH, 'vit-large-p16_8xb512-linear-coslr-90e_in1k-256px.py'))
    ft_l = Config.fromfile(osp.join(BENCH, 'vit-large-p16_8xb128-coslr-50e_in1k-256px.py'))
    assert lp.train_dataloader.batch_size * 8 == 4096 and ft.train_dataloader.batch_size * 8 == 1024
    assert math.isclose(lp.optim_wrapper.optimizer.lr, 1.6) and math.isclose(lp_l.optim_wrapper.optimizer.lr, 0.8)
    assert lp.optim_wrapper.optimizer.type == 'MAGELARS' and lp.optim_wrapper.optimizer.weight_decay == 0
    assert lp.train_cfg.max_epochs == 90 and lp.param_scheduler[0].end == 10
    assert ft.train_cfg.max_epochs == 100 and ft_l.train_cfg.max_epochs == 50
    assert ft.model.backbone.drop_path_rate == 0.1 and ft_l.model.backbone.drop_path_rate == 0.2
    assert ft_l.optim_wrapper.paramwise_cfg.layer_decay_rate == 0.75
    assert [a.type for a in ft.model.train_cfg.augments] == ['Mixup', 'CutMix']
    assert not any(t.type == 'RandomErasing' for t in ft.train_dataloader.dataset.pipeline)
    for cfg in (lp, ft, lp_l, ft_l):
        assert cfg.model.backbone.out_type == 'avg_featmap' and cfg.model.backbone.embed_drop_rate == 0.1
        assert cfg.model.backbone.drop_rate == 0 and cfg.model.backbone.attn_drop_rate == 0
        assert cfg.model.backbone.init_cfg.prefix == 'backbone.'
        assert 'init_cfg' not in cfg.model.backbone.tokenizer  # loaded with the backbone (backbone.tokenizer.*)
        pre = cfg.model.data_preprocessor
        assert pre.mean == [0., 0., 0.] and pre.std == [255., 255., 255.] and pre.to_rgb
        test = cfg.test_dataloader.dataset.pipeline
        assert test[1].scale == 292 and test[1].interpolation == 'bicubic' and test[2].crop_size == 256
    assert lp_l.model.backbone.frozen_stages == 24 and lp.model.backbone.frozen_stages == 12


def test_mixup_cutmix_in_unit_range_equals_the_official_denormalised_path():
    """Official: normalise with the ImageNet mean/std, mix, de-normalise; here: mix in [0, 1]."""
    batch = dict(inputs=[torch.randint(0, 256, (3, 16, 16), dtype=torch.uint8) for _ in range(6)],
                 data_samples=None)
    from mmpretrain.structures import DataSample
    mean, std = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]
    augments = dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)])
    ours = MODELS.build(dict(type='ClsDataPreprocessor', num_classes=10, mean=[0., 0., 0.],
                             std=[255., 255., 255.], to_rgb=True, batch_augments=augments))
    official = MODELS.build(dict(type='ClsDataPreprocessor', num_classes=10, mean=mean, std=std, to_rgb=True,
                                 batch_augments=augments))
    for seed in range(6):  # both branches (Mixup and CutMix) are drawn over these seeds
        samples = [DataSample().set_gt_label(i % 10) for i in range(6)]
        outs = []
        for pre in (ours, official):
            torch.manual_seed(seed)
            np.random.seed(seed)
            outs.append(pre(dict(batch, data_samples=[s.clone() for s in samples]), training=True))
        denorm = outs[1]['inputs'] * torch.tensor(std)[:, None, None] / 255 + torch.tensor(mean)[:, None,
                                                                                                   None] / 255
        torch.testing.assert_close(outs[0]['inputs'], denorm, atol=1e-5, rtol=0)
        for a, b in zip(outs[0]['data_samples'], outs[1]['data_samples']):
            torch.testing.assert_close(a.gt_score, b.gt_score)


def official_lars_step(params, grads, bufs, lr, wd, momentum=0.9, trust=0.001):
    """The official util/lars.py rule, written out independently for the comparison."""
    for p, g, b in zip(params, grads, bufs):
        d = g.clone()
        if p.ndim > 1:
            d = d + wd * p
            pn, dn = p.norm(), d.norm()
            if pn > 0 and dn > 0:
                d = d * (trust * pn / dn)
        b.mul_(momentum).add_(d)
        p.sub_(lr * b)


def test_magelars_follows_the_official_rule():
    torch.manual_seed(0)
    weight, bias = torch.randn(4, 3), torch.randn(4)
    ours = [weight.clone().requires_grad_(), bias.clone().requires_grad_()]
    ref = [weight.clone(), bias.clone()]
    bufs = [torch.zeros_like(weight), torch.zeros_like(bias)]
    opt = MAGELARS(ours, lr=1.0, weight_decay=0.1)
    for step, lr in enumerate([0.5, 1.0, 2.0, 0.25]):  # a changing lr, as under warm-up/cosine
        grads = [torch.randn(4, 3), torch.randn(4)]
        for p, g in zip(ours, grads):
            p.grad = g.clone()
        for group in opt.param_groups:
            group['lr'] = lr
        opt.step()
        official_lars_step(ref, grads, bufs, lr, 0.1)
        for a, b in zip(ours, ref):
            torch.testing.assert_close(a.detach(), b, atol=1e-6, rtol=1e-6)


def test_random_resized_crop_no_retry_clamps_instead_of_retrying():
    img = np.zeros((100, 100, 3), np.uint8)
    crop = RandomResizedCropNoRetry(scale=8, crop_ratio_range=(1.0, 1.0), aspect_ratio_range=(2.0, 2.0))
    # one draw: area 100x100 at aspect 2 -> 141x71, width clamped to the image
    assert crop.rand_crop_params(img)[2:] == (71, 100)
    assert crop(dict(img=img))['img'].shape == (8, 8, 3)


def test_converted_official_linear_probe_checkpoint_loads_into_the_config_model(parity_dump):
    """The official linear-probe layout (head.0 = BN without affine, head.1 = linear) → neck.bn / head.fc."""
    official = dict(parity_dump['state_dicts']['vit_global_pool'])
    dims = official['head.weight'].shape[1]
    official['head.1.weight'], official['head.1.bias'] = official.pop('head.weight'), official.pop('head.bias')
    torch.manual_seed(0)
    running_mean, running_var = torch.randn(dims), torch.rand(dims) + 0.5
    official.update({'head.0.running_mean': running_mean, 'head.0.running_var': running_var,
                     'head.0.num_batches_tracked': torch.tensor(100)})
    sd, layout = convert_official({'model': official})
    assert layout == 'classifier'
    cfg = Config.fromfile(LP_TINY).model
    model = MODELS.build(dict(type='ImageClassifier', data_preprocessor=cfg.data_preprocessor,
                              backbone=backbone_cfg(parity_dump, out_type='avg_featmap',
                                                    tokenizer=tokenizer_cfg(parity_dump)),
                              neck=dict(cfg.neck, input_features=dims),
                              head=dict(cfg.head, num_classes=parity_dump['config']['vit_num_classes'],
                                        in_channels=dims)))
    model.load_state_dict(sd, strict=True)
    model.eval()
    feats = parity_dump['vit_global_pool']['features']
    with torch.no_grad():
        logits = model(parity_dump['images'], mode='tensor')
    expected = torch.nn.functional.linear((feats - running_mean) / torch.sqrt(running_var + 1e-6),
                                          official['head.1.weight'], official['head.1.bias'])
    torch.testing.assert_close(logits, expected, atol=1e-4, rtol=1e-4)
