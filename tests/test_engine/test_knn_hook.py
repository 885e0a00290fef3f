"""KNNEvalHook: kNN / quick linear-probe accuracy during a real tiny MAGE pretraining run."""
import glob
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import default_collate
from mmpretrain.registry import DATASETS, MODELS
from tool_utils import load_tool

from mage_mm.datasets import packaged_photo_paths, random_crops, write_image_folder
from mage_mm.evaluation import knn_scores, linear_probe_scores, pool_features, topk_accuracy
from mage_mm.utils.checkpoint import safe_load

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PRETRAIN_TINY = osp.join(ROOT, 'configs', 'mage', 'mage_vit-tiny_1xb8-20iters_photo-crops-32px.py')


pytestmark = pytest.mark.usefixtures('mmpretrain_scope')  # tests/conftest.py


def clusters(n_per_class=10, num_classes=4, dims=16, seed=0):
    gen = torch.Generator().manual_seed(seed)
    centres = torch.randn(num_classes, dims, generator=gen) * 5
    labels = torch.arange(num_classes).repeat_interleave(n_per_class)
    return centres[labels] + torch.randn(len(labels), dims, generator=gen) * 0.1, labels


def test_knn_and_linear_probe_on_separable_features():
    train, train_labels = clusters(seed=0)
    test, test_labels = clusters(n_per_class=5, seed=0)
    scores = knn_scores(train, train_labels, test, num_classes=4, k=5, chunk=7)
    assert scores.shape == (20, 4)
    assert topk_accuracy(scores, test_labels, (1, 5)) == {1: 100.0, 5: 100.0}  # top-5 clipped to 4 classes
    # k=1 is the nearest neighbour by cosine similarity
    nearest = (torch.nn.functional.normalize(test, dim=1) @ torch.nn.functional.normalize(train, dim=1).t())
    one = knn_scores(train, train_labels, test, num_classes=4, k=1)
    assert torch.equal(one.argmax(1), train_labels[nearest.argmax(1)])
    assert topk_accuracy(linear_probe_scores(train, train_labels, test, 4, steps=50), test_labels, (1, ))[1] == 100
    # wrong labels are counted as wrong
    assert topk_accuracy(scores, (test_labels + 1) % 4, (1, ))[1] == 0.0


def test_pool_features_shapes():
    assert pool_features((torch.ones(2, 5, 3), )).shape == (2, 3)
    tokens = torch.arange(2 * 5 * 3, dtype=torch.float).reshape(2, 5, 3)
    torch.testing.assert_close(pool_features(tokens), tokens[:, 1:].mean(1))  # class slot skipped
    assert pool_features(torch.ones(2, 4, 3, 3)).shape == (2, 4)
    with pytest.raises(ValueError):
        pool_features(torch.ones(2))


@pytest.fixture(scope='module')
def labelled_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('labelled')
    images, labels = random_crops(packaged_photo_paths()[:5], 30, 32, seed=0)
    write_image_folder(images[:20], str(root / 'train'), labels=labels[:20])
    write_image_folder(images[20:], str(root / 'val'), labels=labels[20:])
    return str(root)


@pytest.mark.integration
@pytest.mark.slow
def test_hook_during_tiny_mage_pretraining(labelled_root, tmp_path):
    eval_pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
    loader = lambda split: dict(batch_size=8, dataset=dict(  # noqa: E731
        type='CustomDataset', data_root=labelled_root, data_prefix=split, pipeline=eval_pipeline))
    config = tmp_path / 'mage_tiny_knn.py'
    config.write_text(f"_base_ = [{PRETRAIN_TINY!r}]\n"
                      f"custom_hooks = [dict(type='KNNEvalHook', train_dataloader={loader('train')!r}, "
                      f"val_dataloader={loader('val')!r}, interval=2, by_epoch=False, k=5, "
                      "linear_probe_steps=30, eval_before_train=True)]\n")
    train = load_tool('train')
    work = str(tmp_path / 'work')
    train.main([str(config), '--work-dir', work, '--cfg-options', f'train_dataloader.dataset.data_root={labelled_root}',
                'train_cfg.max_iters=4', 'default_hooks.checkpoint.interval=4', 'default_hooks.logger.interval=1'])
    (scalars, ) = glob.glob(osp.join(work, '*', 'vis_data', 'scalars.json'))
    with open(scalars) as f:
        rows = [json.loads(line) for line in f]
    knn = [r for r in rows if 'knn/top1' in r]
    assert [r['step'] for r in knn] == [0, 2, 4]  # before training, then every 2 iterations
    for r in knn:
        assert 0 <= r['knn/top1'] <= r['knn/top5'] <= 100 and 0 <= r['knn/linear_top1'] <= 100
    losses = [r for r in rows if 'loss' in r]
    assert len(losses) == 4  # training went on after each evaluation

    # the logged kNN accuracy at iteration 4 is what the saved model gives when computed directly
    cfg = Config.fromfile(PRETRAIN_TINY)
    model = MODELS.build(cfg.model)
    model.load_state_dict(safe_load(osp.join(work, 'iter_4.pth'))['state_dict'])
    model.eval()
    feats = {}
    for split in ('train', 'val'):
        dataset = DATASETS.build(loader(split)['dataset'])
        data = model.data_preprocessor(default_collate([dataset[i] for i in range(len(dataset))]), False)
        with torch.no_grad():
            feats[split] = (pool_features(model.extract_feat(data['inputs'])),
                            torch.tensor([int(s.gt_label) for s in data['data_samples']]))
    scores = knn_scores(*feats['train'], feats['val'][0], num_classes=5, k=5)
    assert topk_accuracy(scores, feats['val'][1], (1, ))[1] == pytest.approx(knn[-1]['knn/top1'])
