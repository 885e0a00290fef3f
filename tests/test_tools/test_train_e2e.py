"""tools/train.py end to end with the real mmengine Runner on a folder of real photo crops."""
import math
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch
from tool_utils import REPO_ROOT as ROOT
from tool_utils import run_checked as run

from mage_mm.utils.checkpoint import safe_load

CFG = osp.join(ROOT, 'configs', 'mage', 'mage_vit-tiny_1xb8-20iters_photo-crops-32px.py')
pytestmark = [pytest.mark.integration, pytest.mark.slow]  # subprocesses running mmengine Runners


def losses(log):
    # every logged value, also a non-finite one ('nan', 'inf'), so that the finiteness check below can fail
    return [float(x) for x in re.findall(r'\bloss: (-?(?:[0-9.]+(?:e[-+]?[0-9]+)?|nan|inf))', log)]


def test_train_save_resume(photo_crops_dir, tmp_path):
    work = str(tmp_path / 'work')
    common = [f'train_dataloader.dataset.data_root={photo_crops_dir}', 'default_hooks.checkpoint.interval=3',
              'default_hooks.logger.interval=1']
    log = run([sys.executable, 'tools/train.py', CFG, '--work-dir', work, '--cfg-options',
               'train_cfg.max_iters=6', *common])
    assert osp.isfile(osp.join(work, 'iter_3.pth')) and osp.isfile(osp.join(work, 'iter_6.pth'))
    values = losses(log)
    # one value per iteration (logger interval 1), finite, and near ln(256 codes) = 5.5 for a fresh tiny MAGE
    assert len(values) >= 6 and all(math.isfinite(v) for v in values), values
    assert all(1.0 < v < 10.0 for v in values), values
    # the run's own checkpoint loads with weights_only=True (no pickled code needed)
    ckpt = safe_load(osp.join(work, 'iter_6.pth'))
    assert ckpt['meta']['iter'] == 6 and 'message_hub' in ckpt and 'optimizer' in ckpt
    with pytest.raises(Exception):
        torch.load(osp.join(work, 'iter_6.pth'), weights_only=True)  # plain torch still refuses: allow-list needed

    log = run([sys.executable, 'tools/train.py', CFG, '--work-dir', work, '--resume', osp.join(work, 'iter_3.pth'),
               '--cfg-options', 'train_cfg.max_iters=8', *common])
    assert 'resumed epoch: 0, iter: 3' in log
    assert re.search(r'Iter\(train\) \[4/8\]', log) and re.search(r'Iter\(train\) \[8/8\]', log)
    assert osp.isfile(osp.join(work, 'iter_8.pth'))

    # --resume without a path picks up the latest checkpoint of the work dir
    log = run([sys.executable, 'tools/train.py', CFG, '--work-dir', work, '--resume', '--cfg-options',
               'train_cfg.max_iters=9', *common])
    assert 'resumed epoch: 0, iter: 8' in log and osp.isfile(osp.join(work, 'iter_9.pth'))


def test_missing_checkpoint_for_resume_is_clear(tmp_path):
    res = subprocess.run([sys.executable, 'tools/train.py', CFG, '--work-dir', str(tmp_path), '--resume',
                          str(tmp_path / 'nope.pth')], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode != 0 and '--resume checkpoint not found' in res.stderr


def test_two_process_ddp_on_cpu(photo_crops_dir, tmp_path):
    """tools/dist_train.sh with 2 CPU processes (gloo), no find_unused_parameters."""
    work = str(tmp_path / 'ddp')
    log = run(['bash', 'tools/dist_train.sh', CFG, '2', '--work-dir', work, '--cfg-options',
               f'train_dataloader.dataset.data_root={photo_crops_dir}', 'train_cfg.max_iters=4',
               'default_hooks.checkpoint.interval=4', 'default_hooks.logger.interval=1',
               'train_dataloader.batch_size=4'],
              env={'PYTHON': sys.executable, 'PORT': '29613', 'OMP_NUM_THREADS': '1'})
    assert 'Distributed training: True' in log and 'GPU number: 2' in log  # mmengine's env report
    assert osp.isfile(osp.join(work, 'iter_4.pth'))
    sd = safe_load(osp.join(work, 'iter_4.pth'))['state_dict']
    assert not any(k.startswith('module.') for k in sd)
