"""OpenMMLab's own command lines run mage_mm's tiny configs unmodified.

mmpretrain, mmagic and mmdet ship their ``tools/train.py`` / ``tools/test.py`` under
``<site-packages>/<pkg>/.mim/tools/``; ``mim train|test <pkg> CONFIG`` runs the same scripts. Each run here is
a subprocess in a scratch folder laid out like the repository's expectations (``data/tiny_images``,
``data/tiny_labelled``, ``data/tiny_coco``, ``work_dirs/``), so every config is read exactly as shipped; the only
``--cfg-options`` shorten iteration counts or redirect a work dir. The pretraining run's checkpoint (at the
path the probe, fine-tune and detection configs name by default) is the fixture of the later runs.

What makes this work is the environment, not the tests: the venv startup hook (``tools/env/startup_hook.py``,
torchvision op schemas and mmagic's ``numpy.bool8``) before the CLIs import anything, and ``mage_mm.compat``
from each config's ``custom_imports``.
"""
import glob
import json
import os
import os.path as osp
import re
import subprocess
import sys
from typing import Dict, List

import pytest

from mage_mm.datasets import packaged_photo_paths, random_crops, write_image_folder
from mage_mm.utils.checkpoint import safe_load

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SITE = osp.dirname(osp.dirname(osp.abspath(__import__('mmengine').__file__)))
PRETRAIN = osp.join(ROOT, 'configs', 'mage', 'mage_vit-tiny_1xb8-20iters_photo-crops-32px.py')
PROBE = osp.join(ROOT, 'configs', 'mage', 'benchmarks', 'vit-tiny_1xb8-linear-coslr-2e_photo-crops-5cls-32px.py')
FINETUNE = osp.join(ROOT, 'configs', 'mage', 'benchmarks', 'vit-tiny_1xb8-coslr-2e_photo-crops-5cls-32px.py')
TOKENIZER = osp.join(ROOT, 'configs', 'tokenizer', 'vqgan_tiny-f4_1xb8-20iters_photo-crops-32px.py')
GENERATION = osp.join(ROOT, 'configs', 'generation', 'mage-gen_vit-tiny_iter8-temp6_photo-crops-32px.py')
DETECTION = osp.join(ROOT, 'configs', 'detection', 'vitdet_mask-rcnn_mage-vit-tiny_1xb2-4iters_photo-coco-64px.py')

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def cli(pkg: str, script: str) -> str:
    """``<site-packages>/<pkg>/.mim/tools/<script>.py`` (where mim finds it too)."""
    path = osp.join(SITE, pkg, '.mim', 'tools', f'{script}.py')
    assert osp.isfile(path), f'{pkg} does not ship {path}'
    return path


def run(args: List[str], cwd: str, timeout: int = 600) -> str:
    """Run a command in ``cwd`` with one torch thread; return its output, fail with its tail."""
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    env.pop('PYTHONPATH', None)  # the venv's own mage_mm (editable install), as a user has it
    res = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    out = res.stdout + res.stderr
    assert res.returncode == 0, f'{" ".join(args)}\nexit {res.returncode}; output tail:\n{out[-6000:]}'
    return out


def read_test_metrics(work_dir: str) -> Dict[str, float]:
    """The metrics json mmengine's test loop writes (``<work_dir>/<timestamp>/<timestamp>.json``)."""
    files = [f for f in glob.glob(osp.join(work_dir, '*', '*.json'))
             if osp.splitext(osp.basename(f))[0] == osp.basename(osp.dirname(f))]
    assert len(files) == 1, f'expected one test metrics json under {work_dir}, found {files}'
    with open(files[0]) as f:
        return json.load(f)


def val_metrics(work_dir: str) -> List[dict]:
    """The validation rows of a training run's ``vis_data/scalars.json``."""
    (path, ) = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    with open(path) as f:
        rows = [json.loads(line) for line in f]
    return [r for r in rows if 'step' in r and not any(k in r for k in ('loss', 'lr'))]


@pytest.fixture(scope='module')
def workspace(tmp_path_factory) -> str:
    """A scratch folder with the tiny data sets at the configs' default data roots."""
    from tool_utils import load_tool
    ws = str(tmp_path_factory.mktemp('openmmlab_clis'))
    crops, _ = random_crops(packaged_photo_paths(), 32, 32, seed=1)
    write_image_folder(crops, osp.join(ws, 'data', 'tiny_images'))
    images, labels = random_crops(packaged_photo_paths()[:5], 34, 32, seed=0)
    write_image_folder(images[:24], osp.join(ws, 'data', 'tiny_labelled', 'train'), labels=labels[:24])
    write_image_folder(images[24:], osp.join(ws, 'data', 'tiny_labelled', 'val'), labels=labels[24:])
    load_tool('dataset_converters/prepare_photo_coco').make_photo_coco(osp.join(ws, 'data', 'tiny_coco'))
    return ws


@pytest.fixture(scope='module')
def mage_ckpt(workspace) -> str:
    """mmpretrain's tools/train.py on the tiny pretraining config as shipped (20 iterations)."""
    log = run([sys.executable, cli('mmpretrain', 'train'), PRETRAIN], cwd=workspace)
    work = osp.join(workspace, 'work_dirs', 'mage_vit-tiny_1xb8-20iters_photo-crops-32px')
    assert 'Iter(train) [20/20]' in log
    return osp.join(work, 'iter_20.pth')


def test_environment_has_the_startup_hook():
    """Without it every CLI below dies at import; say so first, with the fix."""
    import importlib.util
    assert importlib.util.find_spec('_mage_mm_env_hook') is not None, (
        'the venv startup hook is missing: run `make venv` or `python tools/env/startup_hook.py --install`')


def test_mmpretrain_train_pretraining(mage_ckpt):
    ckpt = safe_load(mage_ckpt)
    assert ckpt['meta']['iter'] == 20 and {'state_dict', 'optimizer', 'message_hub'} <= set(ckpt)
    losses = [float(x) for x in ckpt['message_hub']['log_scalars']['train/loss']._log_history]
    assert len(losses) == 20 and all(0.0 < v < 20.0 for v in losses)


def test_mmpretrain_train_and_test_linear_probe(workspace, mage_ckpt):
    work = osp.join(workspace, 'work_dirs', 'probe')
    run([sys.executable, cli('mmpretrain', 'train'), PROBE, '--work-dir', work], cwd=workspace)
    vals = [r for r in val_metrics(work) if 'accuracy/top1' in r]
    assert len(vals) == 2, vals  # one validation per epoch, 2 epochs
    run([sys.executable, cli('mmpretrain', 'test'), PROBE, osp.join(work, 'epoch_2.pth'), '--work-dir',
         work + '_test'], cwd=workspace)
    metrics = read_test_metrics(work + '_test')
    assert metrics['accuracy/top1'] == vals[-1]['accuracy/top1']  # the saved probe evaluates the same
    assert metrics['accuracy/top5'] == 100.0  # 5 classes


def test_mim_train_and_test_finetune(workspace, mage_ckpt):
    """``mim train|test mmpretrain CONFIG``: mim resolves the package and runs its .mim/tools scripts."""
    mim = osp.join(osp.dirname(sys.executable), 'mim')
    work = osp.join(workspace, 'work_dirs', 'finetune')
    log = run([mim, 'train', 'mmpretrain', FINETUNE, '--work-dir', work], cwd=workspace)
    assert cli('mmpretrain', 'train') in log  # mim echoes the command it runs
    assert osp.isfile(osp.join(work, 'epoch_2.pth'))
    run([mim, 'test', 'mmpretrain', FINETUNE, '--checkpoint', osp.join(work, 'epoch_2.pth'), '--work-dir',
         work + '_test'], cwd=workspace)
    metrics = read_test_metrics(work + '_test')
    vals = [r for r in val_metrics(work) if 'accuracy/top1' in r]
    assert metrics['accuracy/top1'] == vals[-1]['accuracy/top1'] and metrics['accuracy/top5'] == 100.0


def test_mmagic_train_tokenizer(workspace):
    work = osp.join(workspace, 'work_dirs', 'tokenizer')
    log = run([sys.executable, cli('mmagic', 'train'), TOKENIZER, '--work-dir', work, '--cfg-options',
               'train_cfg.max_iters=4'], cwd=workspace)
    assert 'Iter(train) [4/4]' in log
    ckpt = safe_load(osp.join(work, 'iter_4.pth'))
    assert ckpt['meta']['iter'] == 4 and any(k.startswith('tokenizer.') for k in ckpt['state_dict'])
    (val, ) = val_metrics(work)  # the end-of-training validation: reconstruction metrics
    assert 0.0 < val['recon/psnr'] < 100.0 and 0.0 <= val['recon/lpips'] <= 2.0


def test_mmagic_test_generation_with_fid(workspace, mage_ckpt):
    """mmagic's tools/test.py: 8 generated images against the photo crops, offline Inception."""
    work = osp.join(workspace, 'work_dirs', 'generation')
    log = run([sys.executable, cli('mmagic', 'test'), GENERATION, mage_ckpt, '--work-dir', work], cwd=workspace)
    metrics = read_test_metrics(work)
    assert 0.0 < metrics['FID-8/fid'] < 1e4, metrics  # 8 samples of an untrained-ish model: large but finite
    assert re.search(r'FID-8/fid: [0-9.]+ .*FID-8/num_fake: 8\b', log)  # (the json keeps only float scalars)


def test_mmdet_train_and_test_detection(workspace, mage_ckpt):
    work = osp.join(workspace, 'work_dirs', 'detection')
    log = run([sys.executable, cli('mmdet', 'train'), DETECTION, '--work-dir', work], cwd=workspace)
    assert 'Iter(train) [4/4]' in log and 'coco/bbox_mAP' in log
    run([sys.executable, cli('mmdet', 'test'), DETECTION, osp.join(work, 'iter_4.pth'), '--work-dir',
         work + '_test'], cwd=workspace)
    metrics = read_test_metrics(work + '_test')
    for key in ('coco/bbox_mAP', 'coco/segm_mAP'):
        assert 0.0 <= metrics[key] <= 1.0, metrics
