"""Recipe details of the official loaders and evaluation that the configs must carry."""
import glob
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config
from PIL import Image

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PRETRAIN = sorted(glob.glob(osp.join(ROOT, 'configs', 'mage', 'mage*_vit-*-p16_8xb*in1k*.py')))
FULL_BENCH = sorted(glob.glob(osp.join(ROOT, 'configs', 'mage', 'benchmarks', 'vit-*-p16_*in1k-256px.py')))


def load(path):
    return Config.fromfile(path, import_custom_modules=False)


@pytest.mark.parametrize('path', [p for p in PRETRAIN if 'mage-cond' not in p], ids=osp.basename)
def test_pretraining_drops_the_last_partial_batch(path):
    assert load(path).train_dataloader.get('drop_last') is True


def test_the_loader_really_drops_it(tmp_path):
    """10 images at batch 4: 2 iterations per epoch (the official 312 at 4096), which the schedules count."""
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner

    import mage_mm.register  # noqa: F401
    DefaultScope.get_instance('drop-last', scope_name='mmpretrain')
    for i in range(10):
        Image.fromarray(np.full((8, 8, 3), i, np.uint8)).save(tmp_path / f'{i}.png')
    cfg = load(osp.join(ROOT, 'configs', 'mage', 'mage_vit-base-p16_8xb512-amp-coslr-1600e_in1k-256px.py'))
    loader = cfg.train_dataloader
    loader.update(batch_size=4, num_workers=0, persistent_workers=False, pin_memory=False)
    loader.dataset.update(data_root=str(tmp_path), data_prefix='')
    assert len(Runner.build_dataloader(loader)) == 2


@pytest.mark.parametrize('path', FULL_BENCH, ids=osp.basename)
def test_full_size_probe_and_finetune_evaluate_under_autocast(path):
    cfg = load(path)
    assert cfg.val_cfg.get('fp16') is True and cfg.test_cfg.get('fp16') is True


@pytest.mark.parametrize('path', [p for p in FULL_BENCH if 'linear' in p], ids=osp.basename)
def test_probe_broadcasts_rank0_batchnorm_statistics(path):
    assert load(path).model_wrapper_cfg.broadcast_buffers is True
