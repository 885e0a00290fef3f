"""tools/test.py with the tiny generation config writes its FID statistics cache into the work dir only."""
import os
import os.path as osp
import subprocess
import sys

import pytest
from generation_utils import ROOT, TINY_GEN_CFG, real_photo_folder, save_random_tiny_checkpoint
from mmengine.config import Config
from tool_utils import load_tool


def test_relative_cache_dir_is_resolved_in_the_work_dir(tmp_path):
    cfg = Config.fromfile(TINY_GEN_CFG)
    cfg.work_dir = str(tmp_path / 'work')
    load_tool('test').cache_dirs_in_work_dir(cfg)
    assert cfg.test_evaluator.metrics[0].stats_cache_dir == osp.join(str(tmp_path / 'work'), 'fid_cache')
    cfg.test_evaluator.metrics[0].stats_cache_dir = str(tmp_path / 'abs')  # an absolute folder is kept
    load_tool('test').cache_dirs_in_work_dir(cfg)
    assert cfg.test_evaluator.metrics[0].stats_cache_dir == str(tmp_path / 'abs')


@pytest.mark.integration
def test_tools_test_writes_nothing_in_the_current_directory(tmp_path):
    real = real_photo_folder(str(tmp_path / 'real'), 8, 32, seed=4)
    ckpt = save_random_tiny_checkpoint(str(tmp_path / 'tiny.pth'))
    cwd, work = tmp_path / 'cwd', tmp_path / 'work'
    cwd.mkdir()
    res = subprocess.run([sys.executable, osp.join(ROOT, 'tools', 'test.py'), TINY_GEN_CFG, ckpt, '--work-dir',
                          str(work), '--cfg-options', f'test_dataloader.dataset.data_root={real}',
                          f'test_evaluator.metrics.0.real_folder={real}', 'log_level=WARNING'],
                         cwd=cwd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS='1'),
                         timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    assert os.listdir(cwd) == []  # before the fix: cwd/work_dirs/fid_cache/fid_stats_<key>.npz
    assert [n for n in os.listdir(work / 'fid_cache') if n.startswith('fid_stats_')]
