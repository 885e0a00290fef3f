"""The token cache: tools/dataset_converters/pretokenize.py + TokenCacheDataset + MAGE trained from cached ids.

Round trip (a cached view equals the tokenizer's ids of that view redrawn by the training dataset's own
pipeline), resume after an interrupted run, corrupt/mismatched shards and tokenizers refused with clear errors,
training through the Runner without a tokenizer pass.
"""
import copy
import json
import os
import os.path as osp
import random

import numpy as np
import pytest
import torch
from generation_utils import TINY_PRETRAIN_CFG, real_photo_folder, save_random_tiny_checkpoint
from mmengine.config import Config
from mmengine.dataset import default_collate
from mmengine.registry import DefaultScope
from tool_utils import load_tool

from mage_mm.datasets.token_cache import MANIFEST, TokenCacheDataset, TokenCacheError, view_seed

VIEWS = 3


@pytest.fixture(autouse=True)
def mmpretrain_scope():
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        yield


@pytest.fixture(scope='module')
def photos(tmp_path_factory):
    return real_photo_folder(str(tmp_path_factory.mktemp('photos')), 11, 40, seed=5)


@pytest.fixture(scope='module')
def ckpts(tmp_path_factory):
    d = tmp_path_factory.mktemp('ckpt')
    return save_random_tiny_checkpoint(str(d / 'a.pth'), seed=0), save_random_tiny_checkpoint(str(d / 'b.pth'), seed=1)


def pretokenize(photos, out, ckpt, *extra):
    return load_tool('dataset_converters/pretokenize').main(
        [TINY_PRETRAIN_CFG, '--out', str(out), '--checkpoint', ckpt, '--views', str(VIEWS), '--shard-size', '4',
         '--batch-size', '5', '--no-progress', '--cfg-options', f'train_dataloader.dataset.data_root={photos}',
         *extra])


@pytest.fixture(scope='module')
def cache(photos, ckpts, tmp_path_factory):
    out = tmp_path_factory.mktemp('cache') / 'tokens'
    assert pretokenize(photos, out, ckpts[0]) == 0
    return str(out)


def trained_model(ckpt):
    """The tiny MAGE of the training config with the checkpoint's weights (its tokenizer and preprocessor)."""
    from mmpretrain.registry import MODELS
    model = MODELS.build(Config.fromfile(TINY_PRETRAIN_CFG).model)
    model.load_state_dict(torch.load(ckpt, weights_only=True)['state_dict'], strict=True)
    return model.eval()


def test_cached_views_equal_the_tokenizer_on_the_redrawn_training_views(cache, photos, ckpts):
    from mmpretrain.registry import DATASETS
    cfg = Config.fromfile(TINY_PRETRAIN_CFG)
    # the training dataset as the Runner builds it, with its full pipeline (load, crop, flip, pack)
    ds = DATASETS.build(dict(copy.deepcopy(cfg.train_dataloader.dataset), data_root=photos))
    model = trained_model(ckpts[0])
    cached = TokenCacheDataset(cache, verify=True)
    manifest = cached.manifest
    assert manifest['num_images'] == len(ds) == 11 and manifest['num_views'] == VIEWS
    assert manifest['token_grid'] == [8, 8] and manifest['dtype'] == '<u2' and len(manifest['shards']) == 3
    views_differ = False
    for i in range(len(ds)):
        for k in range(VIEWS):
            random.seed(view_seed(0, i, k))
            np.random.seed(view_seed(0, i, k))
            batch = model.data_preprocessor(default_collate([ds[i]]), training=True)
            images = batch['inputs'][0] if isinstance(batch['inputs'], list) else batch['inputs']
            with torch.no_grad():
                ids = model.backbone.tokenizer.encode(images)[0].numpy()
            np.testing.assert_array_equal(cached.tokens(i, k), ids, err_msg=f'image {i} view {k}')
        views_differ |= not np.array_equal(cached.tokens(i, 0), cached.tokens(i, 1))
    assert views_differ, 'the K views should be different crops'


def test_each_pass_reads_one_view_and_k_passes_read_all(cache):
    ds = TokenCacheDataset(cache)
    seen = [[ds[i]['data_samples'].metainfo['view'] for i in range(len(ds))] for _ in range(VIEWS)]
    for i in range(len(ds)):
        assert sorted(p[i] for p in seen) == list(range(VIEWS))
        item = ds[i]
        assert item['inputs'].dtype == torch.int64 and item['inputs'].shape == (64, )
        np.testing.assert_array_equal(item['inputs'].numpy(), ds.tokens(i, item['data_samples'].metainfo['view']))


def test_resume_after_interruption_gives_the_same_cache(cache, photos, ckpts, tmp_path):
    out = tmp_path / 'tokens'
    assert pretokenize(photos, out, ckpts[0], '--max-shards', '1') == 3  # stopped after one shard
    with open(out / MANIFEST) as f:
        assert [s['complete'] for s in json.load(f)['shards']] == [True, False, False]
    with pytest.raises(TokenCacheError, match='incomplete'):
        TokenCacheDataset(str(out))
    # what a killed writer leaves: a temporary of the next shard (dead pid) and nothing at the final name
    (out / '.shard_00001.tmp-999999-deadbeef.npy').write_bytes(b'\x93NUMPY partial')
    before = os.stat(out / 'shard_00000.npy').st_mtime_ns
    assert pretokenize(photos, out, ckpts[0]) == 0
    assert os.stat(out / 'shard_00000.npy').st_mtime_ns == before  # complete shards are kept
    assert not any(n.startswith('.') for n in os.listdir(out))
    a, b = TokenCacheDataset(str(out), verify=True), TokenCacheDataset(cache)
    for i in range(len(a)):
        for k in range(VIEWS):
            np.testing.assert_array_equal(a.tokens(i, k), b.tokens(i, k))


def test_mismatches_and_corruption_are_clear_errors(cache, photos, ckpts, tmp_path):
    # another tokenizer into the same folder: refused
    with pytest.raises(TokenCacheError, match='other settings.*tokenizer_sha256'):
        pretokenize(photos, cache, ckpts[1])
    with pytest.raises(TokenCacheError, match='4x4'):
        TokenCacheDataset(cache, expect_token_grid=(4, 4))
    # a flipped byte in a shard: caught by verify; a truncated shard: caught by the header check
    bad = tmp_path / 'bad'
    import shutil
    shutil.copytree(cache, bad)
    raw = bytearray((bad / 'shard_00001.npy').read_bytes())
    raw[-3] ^= 0x01
    (bad / 'shard_00001.npy').write_bytes(bytes(raw))
    with pytest.raises(TokenCacheError, match='shard_00001.npy is corrupt'):
        TokenCacheDataset(str(bad), verify=True)
    (bad / 'shard_00002.npy').write_bytes(raw[:100])
    with pytest.raises(TokenCacheError, match='shard_00002.npy'):
        TokenCacheDataset(str(bad))
    # the model refuses ids of another tokenizer
    other = trained_model(ckpts[1])
    item = default_collate([TokenCacheDataset(cache)[0]])
    with pytest.raises(TokenCacheError, match='another tokenizer'):
        other.loss(item['inputs'], item['data_samples'])
    same = trained_model(ckpts[0])
    assert torch.isfinite(same.loss(item['inputs'], item['data_samples'])['loss'])


def cache_training_cfg(cfg_file: str, cache_dir: str, work_dir: str) -> Config:
    """The tiny config ``cfg_file`` reading ids from ``cache_dir``: 3 iterations, a checkpoint at the last."""
    cfg = Config.fromfile(cfg_file)
    cfg.train_dataloader.dataset = dict(type='TokenCacheDataset', cache_dir=cache_dir, expect_token_grid=(8, 8))
    # cached items are token ids, not images: nothing to normalise
    cfg.model.data_preprocessor = dict(type='BaseDataPreprocessor')
    cfg.work_dir = work_dir
    cfg.train_cfg.max_iters = 3
    cfg.default_hooks.checkpoint.interval = 3
    return cfg


def train_counting_tokenizer_calls(cfg: Config) -> int:
    """Train through the Runner; the number of forward calls of the tokenizer's encoder."""
    from mmengine.runner import Runner
    runner = Runner.from_cfg(cfg)
    calls = []
    runner.model.backbone.tokenizer.encoder.register_forward_pre_hook(lambda *a: calls.append(1))
    runner.train()
    return len(calls)


@pytest.mark.integration
def test_training_from_the_cache_skips_the_tokenizer(cache, ckpts, tmp_path):
    from mmengine.runner import Runner
    cfg = cache_training_cfg(TINY_PRETRAIN_CFG, cache, str(tmp_path / 'work'))
    cfg.model.backbone.tokenizer.init_cfg = dict(type='Pretrained', checkpoint=ckpts[0], prefix='backbone.tokenizer.')
    assert train_counting_tokenizer_calls(cfg) == 0 and osp.isfile(tmp_path / 'work' / 'iter_3.pth')
    # the same config with another tokenizer stops at the first step with the hash error
    cfg.model.backbone.tokenizer.init_cfg.checkpoint = ckpts[1]
    cfg.work_dir = str(tmp_path / 'work2')
    with pytest.raises(TokenCacheError, match='another tokenizer'):
        Runner.from_cfg(cfg).train()


# ------------------------------------------------------------------ labels (pretokenize.py --labels)
COND_TINY_CFG = osp.join(osp.dirname(TINY_PRETRAIN_CFG), 'mage-cond_vit-tiny_1xb8-20iters_photo-crops-5cls-32px.py')


@pytest.fixture(scope='module')
def labelled(ckpts, tmp_path_factory):
    """Class folders (5 classes: crops of 5 real photos) and their labelled cache."""
    from mage_mm.datasets import packaged_photo_paths, random_crops, write_image_folder
    root = tmp_path_factory.mktemp('labelled')
    images, labels = random_crops(packaged_photo_paths()[:5], 15, 32, seed=2)
    write_image_folder(images, str(root / 'train'), labels=labels)
    out = root / 'tokens'
    assert pretokenize(str(root / 'train'), out, ckpts[0], '--labels') == 0
    return str(root / 'train'), str(out)


def test_labelled_cache_gives_each_view_its_class(labelled, tmp_path):
    from mmpretrain.datasets import CustomDataset
    images, out = labelled
    truth = CustomDataset(data_root=images, data_prefix='', with_label=True)
    ds = TokenCacheDataset(out)
    assert ds.metainfo['classes'] == tuple(truth.metainfo['classes']) and len(ds) == len(truth) == 15
    for i in range(len(ds)):
        assert int(ds[i]['data_samples'].gt_label) == int(truth.get_data_info(i)['gt_label'])
    # a corrupt labels file is refused with its path
    bad = tmp_path / 'bad'
    os.makedirs(bad)
    for name in os.listdir(out):
        with open(osp.join(out, name), 'rb') as src, open(bad / name, 'wb') as dst:
            dst.write(src.read())
    labels = np.load(bad / 'labels.npy')
    labels[0] = (labels[0] + 1) % 5
    np.save(bad / 'labels.npy', labels)
    with pytest.raises(TokenCacheError, match=r'labels\.npy is corrupt'):
        TokenCacheDataset(str(bad))


def test_unlabelled_cache_has_no_classes(cache):
    item = TokenCacheDataset(cache)[0]
    assert 'gt_label' not in item['data_samples'] and 'classes' not in TokenCacheDataset(cache).metainfo


@pytest.mark.integration
def test_conditional_training_from_the_labelled_cache_skips_the_tokenizer(labelled, ckpts, tmp_path):
    _, out = labelled
    cfg = cache_training_cfg(COND_TINY_CFG, out, str(tmp_path / 'work'))
    cfg.model.init_checkpoint = ckpts[0]  # the unconditional MAGE whose tokenizer made the cache
    assert train_counting_tokenizer_calls(cfg) == 0 and osp.isfile(tmp_path / 'work' / 'iter_3.pth')
