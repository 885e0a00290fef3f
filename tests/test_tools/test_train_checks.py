"""tools/train.py fails at start, naming the culprit: unknown config keys, nothing to resume, a wrong ``load_from``,
a misspelt checkpoint-hook option; ``--auto-scale-lr`` works on the tiny config."""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CFG = osp.join(ROOT, 'configs', 'mage', 'mage_vit-tiny_1xb8-20iters_photo-crops-32px.py')
ENV = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1')


def train(work, *args, options=()):
    cmd = [sys.executable, 'tools/train.py', CFG, '--work-dir', str(work), *args, '--cfg-options',
           'default_hooks.logger.interval=1', *options]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=ENV, timeout=600)


def failed_with(res, *needles):
    assert res.returncode != 0, res.stdout[-2000:]
    for needle in needles:
        assert needle in res.stderr, res.stderr[-3000:]
    # it failed at start: no training iteration ran
    assert 'Iter(train)' not in res.stdout + res.stderr


def test_unknown_top_level_key_is_an_error(tmp_path, photo_crops_dir):
    res = train(tmp_path, options=[f'train_dataloader.dataset.data_root={photo_crops_dir}', 'load_form=x.pth'])
    failed_with(res, "unknown top-level config key(s)", "'load_form' (did you mean 'load_from'?)")


def test_config_key_check_passes_every_shipped_config():
    import glob

    from mmengine.config import Config

    from mage_mm.engine.runner_checks import check_config_keys
    for path in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True):
        if '_base_' in path.split(os.sep):
            continue
        check_config_keys(Config.fromfile(path, import_custom_modules=False))


def test_resume_with_nothing_to_resume_is_an_error(tmp_path, photo_crops_dir):
    res = train(tmp_path, '--resume', options=[f'train_dataloader.dataset.data_root={photo_crops_dir}'])
    failed_with(res, f'--resume: nothing to resume in {tmp_path}')


def test_misspelt_checkpoint_hook_option_fails_at_start(tmp_path, photo_crops_dir):
    res = train(tmp_path, options=[f'train_dataloader.dataset.data_root={photo_crops_dir}',
                                   'default_hooks.checkpoint.max_keep_ckpt=2'])
    failed_with(res, "unknown option(s) ['max_keep_ckpt']", 'max_keep_ckpts')


def test_tokenizer_checkpoint_as_load_from_is_an_error(tmp_path, photo_crops_dir):
    from mage_mm.models.tokenizers import MAGEVQGAN
    ckpt = tmp_path / 'tokenizer.pth'
    torch.save({'state_dict': MAGEVQGAN(arch='tiny').state_dict()}, ckpt)
    res = train(tmp_path / 'w', options=[f'train_dataloader.dataset.data_root={photo_crops_dir}', f'load_from={ckpt}'])
    failed_with(res, f'load_from {ckpt} does not fit MAGE', 'No key matches: this is a checkpoint of another model')


def test_empty_training_image_fails_at_start_naming_it(tmp_path, photo_crops_dir):
    import shutil
    bad = tmp_path / 'imgs'
    shutil.copytree(photo_crops_dir, bad)
    (bad / 'zz_empty.png').write_bytes(b'')
    res = train(tmp_path / 'w', options=[f'train_dataloader.dataset.data_root={bad}'])
    failed_with(res, 'BadImageError', f'{bad / "zz_empty.png"}: empty file (0 bytes)')
    # or, when asked, trains without it and says so
    res = train(tmp_path / 'w2', options=[f'train_dataloader.dataset.data_root={bad}', 'train_cfg.max_iters=1',
                                          "image_check.on_error=skip"])
    assert res.returncode == 0, res.stderr[-3000:]
    assert 'image check: skipped 1 of 33 files of CustomDataset' in res.stdout + res.stderr


@pytest.mark.integration
def test_auto_scale_lr_on_the_tiny_config(tmp_path, photo_crops_dir):
    res = train(tmp_path, '--auto-scale-lr', options=[f'train_dataloader.dataset.data_root={photo_crops_dir}',
                                                      'train_cfg.max_iters=1', 'train_dataloader.batch_size=4'])
    assert res.returncode == 0, res.stderr[-3000:]
    # base batch 8 (the config's), real batch 4: the lr is halved
    assert 'LR is set based on batch size of 8' in res.stdout + res.stderr
    assert 'Scaling the original LR by 0.5' in res.stdout + res.stderr


def test_test_tool_refuses_a_checkpoint_of_another_model(tmp_path):
    from mage_mm.models.tokenizers import MAGEVQGAN
    ckpt = tmp_path / 'tokenizer.pth'
    torch.save({'state_dict': MAGEVQGAN(arch='tiny').state_dict()}, ckpt)
    gen_cfg = osp.join(ROOT, 'configs', 'generation', 'mage-gen_vit-tiny_iter8-temp6_photo-crops-32px.py')
    res = subprocess.run([sys.executable, 'tools/test.py', gen_cfg, str(ckpt), '--work-dir', str(tmp_path / 'w')],
                         cwd=ROOT, capture_output=True, text=True, env=ENV, timeout=600)
    assert res.returncode != 0 and f'load_from {ckpt} does not fit' in res.stderr, res.stderr[-3000:]
