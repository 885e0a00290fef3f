"""MAGECheckpointHook end to end: exact resume after SIGKILL, kill-during-save loop, NaN / explosion stop.

Every test runs ``tools/train.py`` on the tiny configs in a subprocess on CPU with one thread.
"""
import glob
import json
import os
import os.path as osp
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from mage_mm.datasets import packaged_photo_paths, random_crops, write_image_folder
from mage_mm.utils.checkpoint import safe_load

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MAGE_CFG = osp.join(ROOT, 'configs', 'mage', 'mage_vit-tiny_1xb8-20iters_photo-crops-32px.py')
TOK_CFG = osp.join(ROOT, 'configs', 'tokenizer', 'vqgan_tiny-f4_1xb8-20iters_photo-crops-32px.py')
ENV = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')

pytestmark = pytest.mark.integration


@pytest.fixture(scope='module')
def image_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp('photos')
    images, _ = random_crops(packaged_photo_paths(), 32, 32, seed=1)
    write_image_folder(images, str(out))
    return str(out)


def train_cmd(cfg, work, *options, resume=None):
    cmd = [sys.executable, 'tools/train.py', cfg, '--work-dir', work]
    if resume is not None:
        cmd += ['--resume'] + ([] if resume == 'auto' else [resume])
    return cmd + ['--cfg-options', *options]


def run(cmd, expect_ok=True, timeout=600):
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=ENV, timeout=timeout)
    if expect_ok:
        assert res.returncode == 0, f'{cmd}\nSTDOUT:\n{res.stdout[-3000:]}\nSTDERR:\n{res.stderr[-3000:]}'
    return res


def iter_losses(work, key='loss'):
    """iteration -> loss from every scalars.json of the work dir (later runs overwrite earlier ones)."""
    out = {}
    for path in sorted(glob.glob(osp.join(work, '*', 'vis_data', 'scalars.json'))):
        with open(path) as f:
            for line in f:
                rec = json.loads(line)
                if key in rec and 'iter' in rec:
                    out[rec['iter']] = rec[key]
    return out


def wait_for(path, proc, timeout=300):
    start = time.time()
    while not osp.exists(path):
        assert proc.poll() is None, f'training ended before {path} appeared'
        assert time.time() - start < timeout, f'{path} did not appear in {timeout} s'
        time.sleep(0.02)


def common(image_dir, interval):
    return [f'train_dataloader.dataset.data_root={image_dir}', 'default_hooks.logger.interval=1',
            f'default_hooks.checkpoint.interval={interval}', 'randomness.seed=0']


def test_sigkill_resume_gives_the_uninterrupted_losses(image_dir, tmp_path):
    """Killed with SIGKILL after its first checkpoint and resumed, a run logs the same per-iteration losses."""
    opts = common(image_dir, 4)
    full = str(tmp_path / 'full')
    run(train_cmd(MAGE_CFG, full, *opts, 'train_cfg.max_iters=10'))
    reference = iter_losses(full)
    assert sorted(reference) == list(range(1, 11))

    work = str(tmp_path / 'killed')
    # the same run (the schedule does not depend on max_iters), killed once iter_4.pth is complete
    proc = subprocess.Popen(train_cmd(MAGE_CFG, work, *opts, 'train_cfg.max_iters=200'), cwd=ROOT, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(osp.join(work, 'last_checkpoint'), proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    with open(osp.join(work, 'last_checkpoint')) as f:
        resumed_from = f.read().strip()
    assert osp.basename(resumed_from) == 'iter_4.pth'
    kept = str(tmp_path / 'iter_4_copy.pth')  # rotation removes iter_4.pth later
    shutil.copy(resumed_from, kept)
    res = run(train_cmd(MAGE_CFG, work, *opts, 'train_cfg.max_iters=10', resume='auto'))
    assert 'resumed epoch: 0, iter: 4' in res.stdout + res.stderr
    resumed = iter_losses(work)
    for it in range(5, 11):
        assert resumed[it] == reference[it], (it, resumed[it], reference[it])

    # the same resume without the saved random states (mmengine's behaviour) continues differently
    plain = str(tmp_path / 'plain')
    os.makedirs(plain)
    res = run(train_cmd(MAGE_CFG, plain, *opts, 'train_cfg.max_iters=10',
                        'default_hooks.checkpoint.save_random_states=False', resume=kept))
    differs = iter_losses(plain)
    assert sorted(differs) == list(range(5, 11))
    assert all(differs[it] != reference[it] for it in range(5, 11))


def test_checkpoint_holds_random_states(image_dir, tmp_path):
    work = str(tmp_path / 'w')
    run(train_cmd(MAGE_CFG, work, *common(image_dir, 2), 'train_cfg.max_iters=2'))
    ckpt = safe_load(osp.join(work, 'iter_2.pth'))  # plain data: loads with weights_only=True
    states = ckpt['random_states']
    assert states['version'] == 1 and len(states['ranks']) == 1
    assert set(states['ranks'][0]) == {'torch', 'cuda', 'numpy', 'python'}
    assert sorted(os.listdir(work)) == sorted(['iter_2.pth', 'last_checkpoint', osp.basename(MAGE_CFG)]
                                              + [d for d in os.listdir(work) if d[:8].isdigit()])


def _loadable(path):
    sd = safe_load(path)['state_dict']
    return all(torch.isfinite(v).all() for v in sd.values() if v.is_floating_point())


def test_kill_during_save_loop_leaves_a_complete_checkpoint(image_dir, tmp_path):
    """SIGKILL at random moments while saving every iteration (keep 1): resume always finds a complete file."""
    work = str(tmp_path / 'w')
    opts = common(image_dir, 1) + ['default_hooks.checkpoint.max_keep_ckpts=1', 'train_cfg.max_iters=400']
    rng = random.Random(0)
    last_iters = []
    for round_ in range(5):
        resume = 'auto' if osp.exists(osp.join(work, 'last_checkpoint')) else None
        proc = subprocess.Popen(train_cmd(MAGE_CFG, work, *opts, resume=resume), cwd=ROOT, env=ENV,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            # wait for the first save of this round, then kill at a random moment of the following saves
            marker_before = osp.getmtime(osp.join(work, 'last_checkpoint')) if resume else None
            start = time.time()
            while True:
                assert proc.poll() is None, proc.stderr.read()[-3000:]
                marker = osp.join(work, 'last_checkpoint')
                if osp.exists(marker) and osp.getmtime(marker) != marker_before:
                    break
                assert time.time() - start < 300
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.6))
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        visible = sorted(glob.glob(osp.join(work, '*.pth')))
        with open(osp.join(work, 'last_checkpoint')) as f:
            target = f.read().strip()
        assert target in visible, (target, visible)
        for path in visible:  # never a truncated file under a final name
            assert _loadable(path), path
        last_iters.append(safe_load(target)['meta']['iter'])
    assert last_iters == sorted(last_iters) and last_iters[-1] > last_iters[0]
    # the final resume starts from the last complete checkpoint and cleans the killed writers' temporaries
    res = run(train_cmd(MAGE_CFG, work, *common(image_dir, 1), 'default_hooks.checkpoint.max_keep_ckpts=1',
                        f'train_cfg.max_iters={last_iters[-1] + 1}', resume='auto'))
    log = res.stdout + res.stderr
    assert f'resumed epoch: 0, iter: {last_iters[-1]}' in log
    assert not [n for n in os.listdir(work) if n.startswith('.iter_')], os.listdir(work)


def _jump_config(tmp_path, base, at_iter, gamma=1e12):
    cfg = tmp_path / 'jump.py'
    cfg.write_text(f"_base_ = [{base!r}]\n"
                   f"param_scheduler = [dict(type='MultiStepLR', by_epoch=False, milestones=[{at_iter}], "
                   f"gamma={gamma})]\n")
    return str(cfg)


@pytest.mark.parametrize('base', [MAGE_CFG, TOK_CFG], ids=['mage', 'tokenizer'])
def test_nan_or_explosion_stops_before_any_bad_checkpoint(image_dir, tmp_path, base):
    """The learning rate jumps by 1e12 at iteration 7: the run stops at 7, writes nothing after iter_6.pth
    and names it as the last good checkpoint."""
    work = str(tmp_path / 'w')
    cfg = _jump_config(tmp_path, base, 6)
    opts = common(image_dir, 1) + ['default_hooks.checkpoint.max_keep_ckpts=2', 'train_cfg.max_iters=12']
    if base == TOK_CFG:
        opts += [f'val_dataloader.dataset.data_root={image_dir}', 'train_cfg.val_interval=100']
    res = run(train_cmd(cfg, work, *opts), expect_ok=False)
    err = res.stderr
    assert res.returncode != 0
    assert 'training stopped at iteration 7' in err, err[-3000:]
    assert f'The last good checkpoint is {osp.join(work, "iter_6.pth")}' in err
    names = sorted(osp.basename(p) for p in glob.glob(osp.join(work, '*.pth')))
    assert names == ['iter_5.pth', 'iter_6.pth']
    for path in glob.glob(osp.join(work, '*.pth')):
        sd = safe_load(path)['state_dict']
        worst = max(float(v.abs().max()) for v in sd.values() if v.is_floating_point() and v.numel())
        assert worst < 1e6, (path, worst)


MAGEC_CFG = osp.join(ROOT, 'configs', 'mage', 'mage-c_vit-tiny_1xb8-20iters_photo-crops-32px.py')
BENCH = osp.join(ROOT, 'configs', 'mage', 'benchmarks')
LP_TINY = osp.join(BENCH, 'vit-tiny_1xb8-linear-coslr-2e_photo-crops-5cls-32px.py')
FT_TINY = osp.join(BENCH, 'vit-tiny_1xb8-coslr-2e_photo-crops-5cls-32px.py')


def test_nan_stop_mage_c(image_dir, tmp_path):
    work = str(tmp_path / 'w')
    cfg = _jump_config(tmp_path, MAGEC_CFG, 6)
    opts = common(image_dir, 1) + ['default_hooks.checkpoint.max_keep_ckpts=2', 'train_cfg.max_iters=12']
    res = run(train_cmd(cfg, work, *opts), expect_ok=False)
    assert res.returncode != 0 and 'training stopped at iteration 7' in res.stderr, res.stderr[-3000:]
    assert f'The last good checkpoint is {osp.join(work, "iter_6.pth")}' in res.stderr
    assert sorted(osp.basename(p) for p in glob.glob(osp.join(work, '*.pth'))) == ['iter_5.pth', 'iter_6.pth']


@pytest.mark.parametrize('base', [LP_TINY, FT_TINY], ids=['linear-probe', 'fine-tune'])
def test_nan_stop_probe_and_finetune(labelled_photo_root, tiny_mage_ckpt, tmp_path, base):
    """Epoch-based classifier loops (3 iterations an epoch): the lr jumps at iteration 5, in epoch 2; the run stops
    there and names epoch_1.pth, the last good checkpoint."""
    work = str(tmp_path / 'w')
    cfg = _jump_config(tmp_path, base, 4)
    opts = [f'model.backbone.init_cfg.checkpoint={tiny_mage_ckpt}', 'default_hooks.logger.interval=1'] + [
        f'{loader}.dataset.data_root={labelled_photo_root}' for loader in ('train_dataloader', 'val_dataloader',
                                                                          'test_dataloader')]
    res = run(train_cmd(cfg, work, *opts), expect_ok=False)
    assert res.returncode != 0 and 'training stopped at iteration 5' in res.stderr, res.stderr[-3000:]
    assert f'The last good checkpoint is {osp.join(work, "epoch_1.pth")}' in res.stderr
    assert sorted(osp.basename(p) for p in glob.glob(osp.join(work, '*.pth'))) == ['epoch_1.pth']


def test_best_checkpoint_is_saved_atomically_and_rotated(labelled_photo_root, tiny_mage_ckpt, tmp_path):
    """save_best through the same atomic path: one best file at the end, complete, no temporaries left."""
    work = str(tmp_path / 'w')
    opts = [f'model.backbone.init_cfg.checkpoint={tiny_mage_ckpt}',
            'default_hooks.checkpoint.save_best=accuracy/top1', 'default_hooks.checkpoint.rule=greater'] + [
        f'{loader}.dataset.data_root={labelled_photo_root}' for loader in ('train_dataloader', 'val_dataloader',
                                                                          'test_dataloader')]
    run(train_cmd(LP_TINY, work, *opts))
    best = glob.glob(osp.join(work, 'best_accuracy_top1_*.pth'))
    assert len(best) == 1 and _loadable(best[0])
    assert not [n for n in os.listdir(work) if n.startswith('.')], os.listdir(work)


@pytest.mark.slow
def test_two_process_resume_is_exact(image_dir, tmp_path):
    """CPU DDP (gloo, 2 processes): every rank's random states are gathered into the checkpoint and restored."""
    opts = [f'train_dataloader.dataset.data_root={image_dir}', 'default_hooks.checkpoint.interval=4',
            'default_hooks.logger.interval=1', 'train_cfg.max_iters=8', 'train_dataloader.batch_size=4']
    env = dict(ENV, PYTHON=sys.executable)

    def dist(work, port, *extra):
        res = subprocess.run(['bash', 'tools/dist_train.sh', MAGE_CFG, '2', '--work-dir', work, *extra,
                              '--cfg-options', *opts], cwd=ROOT, capture_output=True, text=True,
                             env=dict(env, PORT=str(port)), timeout=600)
        assert res.returncode == 0, res.stderr[-3000:]

    full, resumed = str(tmp_path / 'full'), str(tmp_path / 'resumed')
    dist(full, 29681)
    os.makedirs(resumed)
    shutil.copy(osp.join(full, 'iter_4.pth'), resumed)
    assert len(safe_load(osp.join(resumed, 'iter_4.pth'))['random_states']['ranks']) == 2
    dist(resumed, 29682, '--resume', osp.join(resumed, 'iter_4.pth'))
    reference, again = iter_losses(full), iter_losses(resumed)
    assert [again[it] for it in range(5, 9)] == [reference[it] for it in range(5, 9)]


def test_models_own_nan_stop_names_the_checkpoint_before(image_dir, tmp_path):
    """With the magnitude check off the exploded weights are saved (finite) and MAGE's own check stops the next
    forward: the message says that the last file holds those weights and names the one before as good."""
    import re
    work = str(tmp_path / 'w')
    cfg = _jump_config(tmp_path, MAGE_CFG, 6)
    opts = common(image_dir, 1) + ['default_hooks.checkpoint.max_keep_ckpts=2', 'train_cfg.max_iters=20',
                                   'default_hooks.checkpoint.max_abs_weight=None']
    res = run(train_cmd(cfg, work, *opts), expect_ok=False)
    match = re.search(r'training stopped at iteration (\d+): MAGE loss is nan', res.stderr)
    assert res.returncode != 0 and match, res.stderr[-3000:]
    n = int(match.group(1))
    assert (f'{osp.join(work, f"iter_{n - 1}.pth")} holds the weights that gave this loss' in res.stderr
            and f'the last good one is {osp.join(work, f"iter_{n - 2}.pth")}' in res.stderr), res.stderr[-2000:]


def test_between_saves_only_trainable_weights_are_checked():
    """A frozen tensor cannot turn non-finite by training, so the per-iteration check skips it (the demo's
    frozen tokenizer is 40 % of the tensors); the check before a save still covers every parameter."""
    import types

    from mage_mm.engine.hooks.checkpoint_hook import MAGECheckpointHook
    frozen, trained = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    frozen.requires_grad_(False)
    with torch.no_grad():
        frozen.weight[0, 0] = float('nan')
    runner = types.SimpleNamespace(model=torch.nn.Sequential(frozen, trained))  # all the method reads
    hook = MAGECheckpointHook(interval=10)
    assert hook._weight_problem(runner, trainable_only=True) is None
    problem = hook._weight_problem(runner)
    assert problem is not None and '0.weight' in problem
    with torch.no_grad():
        trained.bias[1] = float('inf')
    assert '1.bias' in hook._weight_problem(runner, trainable_only=True)
