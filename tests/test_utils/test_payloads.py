"""No file the project reads runs code: one payload per read path that tests/test_utils/test_checkpoint.py,
tests/test_converters/test_converter.py and tests/test_apis/test_tokenizer_security.py do not cover yet.

Every payload would create a marker file if anything executed it: a pickle whose unpickling calls ``open``
(refused by ``weights_only=True`` / ``allow_pickle=False``), or config text in a checkpoint of plain data
(which mmengine would run through ``Config.fromstring``). Each test asserts the marker never appears.
"""
import json
import os.path as osp
import pickle

import numpy as np
import pytest
import torch
from generation_utils import (  # noqa: F401
    TINY_GEN_CFG,
    TINY_PRETRAIN_CFG,
    real_photo_folder,
    save_random_tiny_checkpoint,
)
from tool_utils import load_tool


class RunsCodeOnLoad:
    """Unpickling calls ``open(marker, 'w')``."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, 'w'))


def config_payload(marker) -> str:
    return f"open({str(marker)!r}, 'w').close()\nmodel = dict(type='MAGE')\n"


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / 'pwned'
    yield path
    assert not path.exists(), f'a payload ran: {path} was created'


@pytest.fixture
def evil_ckpt(tmp_path, marker):
    """A tiny MAGE checkpoint with a pickle payload beside its weights."""
    good = save_random_tiny_checkpoint(str(tmp_path / 'good.pth'))
    ckpt = torch.load(good, weights_only=True)
    ckpt['payload'] = RunsCodeOnLoad(marker)
    path = tmp_path / 'evil.pth'
    torch.save(ckpt, path)
    return str(path)


@pytest.fixture(scope='module')
def photos(tmp_path_factory):
    return real_photo_folder(str(tmp_path_factory.mktemp('photos')), 16, 32, seed=3)


def _train(argv):
    return load_tool('train').main(argv)


@pytest.mark.parametrize('how', ['load_from', 'resume'])
def test_train_load_from_and_resume_refuse_a_pickle_payload(how, evil_ckpt, photos, tmp_path, marker):
    extra = (['--cfg-options', f'load_from={evil_ckpt}'] if how == 'load_from' else
             ['--resume', evil_ckpt, '--cfg-options'])
    with pytest.raises(pickle.UnpicklingError, match='refusing to unpickle .*evil.pth'):
        _train([TINY_PRETRAIN_CFG, '--work-dir', str(tmp_path / 'work'), *extra,
                f'train_dataloader.dataset.data_root={photos}', 'train_cfg.max_iters=2'])


@pytest.mark.integration
def test_resume_never_evaluates_config_text_in_a_data_only_checkpoint(photos, tmp_path, marker):
    """mmengine's Runner.resume runs ``Config.fromstring(meta['config'])``; mage_mm's loader drops that text."""
    work = tmp_path / 'work'
    common = [TINY_PRETRAIN_CFG, '--work-dir', str(work), '--cfg-options',
              f'train_dataloader.dataset.data_root={photos}', 'default_hooks.checkpoint.interval=1']
    _train([*common, 'train_cfg.max_iters=1'])
    from mage_mm.utils.checkpoint import safe_load
    ckpt = safe_load(str(work / 'iter_1.pth'))
    ckpt['meta']['config'] = config_payload(marker)  # plain data: passes weights_only=True
    ckpt['meta']['cfg'] = config_payload(marker)
    crafted = tmp_path / 'crafted.pth'
    torch.save(ckpt, crafted)
    _train([TINY_PRETRAIN_CFG, '--work-dir', str(work), '--resume', str(crafted), '--cfg-options',
            f'train_dataloader.dataset.data_root={photos}', 'default_hooks.checkpoint.interval=1',
            'train_cfg.max_iters=2'])
    assert osp.isfile(work / 'iter_2.pth')  # resumed and trained on


def test_generate_and_edit_refuse_a_pickle_payload(evil_ckpt, tmp_path, marker):
    from PIL import Image
    with pytest.raises(pickle.UnpicklingError, match='refusing to unpickle'):
        load_tool('generate').main([TINY_GEN_CFG, evil_ckpt, '--num-images', '1', '--out-dir', str(tmp_path / 'g'),
                                    '--no-progress'])
    Image.new('RGB', (32, 32)).save(tmp_path / 'in.png')
    with pytest.raises(pickle.UnpicklingError, match='refusing to unpickle'):
        load_tool('edit').main([TINY_GEN_CFG, evil_ckpt, '--image', str(tmp_path / 'in.png'), '--task', 'inpaint',
                                '--out', str(tmp_path / 'out.png')])


def test_export_tool_refuses_a_pickle_payload(evil_ckpt, tmp_path, marker):
    with pytest.raises(pickle.UnpicklingError, match='refusing to unpickle'):
        load_tool('model_converters/export_vqgan_tokenizer').main([evil_ckpt, str(tmp_path / 'tok.pth')])


def test_mmagic_inferencer_refuses_a_pickle_payload(evil_ckpt, marker):
    from mmagic.apis.inferencers import Inferencers
    with pytest.raises(pickle.UnpicklingError, match='refusing to unpickle'):
        Inferencers(task='unconditional', config=TINY_GEN_CFG, ckpt=evil_ckpt, device='cpu')


def test_inferencer_without_config_never_evaluates_the_checkpoints_config_text(tmp_path, marker):
    """mmengine's BaseInferencer (mmdet's DetInferencer(weights=...)) with no config evaluates the
    checkpoint's config text; through mage_mm's loader the text is gone and the config must be given."""
    from mmdet.apis import DetInferencer
    path = tmp_path / 'det.pth'
    torch.save({'state_dict': {'w': torch.zeros(1)}, 'meta': {'cfg': config_payload(marker)},
                'message_hub': {'runtime_info': {'cfg': config_payload(marker)}}}, path)
    with pytest.raises(ValueError, match='Cannot find the config'):
        DetInferencer(model=None, weights=str(path), device='cpu')


def test_cached_fid_statistics_with_a_pickle_are_refused(tmp_path, marker):
    from mage_mm.evaluation.fid import load_stats
    path = tmp_path / 'stats.npz'
    np.savez(path, mu=np.array([RunsCodeOnLoad(marker)], dtype=object), sigma=np.eye(2),
             meta=np.array(json.dumps({})))
    with pytest.raises(ValueError, match='allow_pickle'):
        load_stats(str(path))
    from PIL import Image
    (tmp_path / 'gen').mkdir()
    for i in range(2):
        Image.new('RGB', (32, 32), (60 * i, 0, 0)).save(tmp_path / 'gen' / f'{i}.png')
    with pytest.raises(ValueError, match='allow_pickle'):
        load_tool('analysis_tools/compute_fid').main([str(tmp_path / 'gen'), str(path), '--batch-size', '2'])


def test_token_cache_shard_with_a_pickle_is_refused(tmp_path, marker):
    from mage_mm.datasets.token_cache import TokenCacheError, open_shard
    np.save(tmp_path / 'shard_00000.npy', np.array([RunsCodeOnLoad(marker)], dtype=object), allow_pickle=True)
    manifest = dict(token_grid=[8, 8], num_views=1, dtype='uint8')
    shard = dict(file='shard_00000.npy', start=0, stop=1, complete=True)
    with pytest.raises(TokenCacheError, match='not a readable .npy shard'):
        open_shard(str(tmp_path), shard, manifest)
