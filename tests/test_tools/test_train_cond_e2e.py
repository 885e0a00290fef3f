"""tools/train.py end to end for the class-conditional MAGE: a class-folder dataset, real labels, resume."""
import json
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch

from mage_mm.datasets import packaged_photo_paths, random_crops, write_image_folder
from mage_mm.utils.checkpoint import safe_load

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
UNCOND_CFG = osp.join(ROOT, 'configs', 'mage', 'mage_vit-tiny_1xb8-20iters_photo-crops-32px.py')
COND_CFG = osp.join(ROOT, 'configs', 'mage', 'mage-cond_vit-tiny_1xb8-20iters_photo-crops-5cls-32px.py')

pytestmark = pytest.mark.integration


@pytest.fixture(scope='module')
def labelled_root(tmp_path_factory):
    """ImageFolder tree train/<class>/: 32 px crops of 5 real photos, labelled by photo."""
    root = tmp_path_factory.mktemp('labelled5')
    images, labels = random_crops(packaged_photo_paths()[:5], 40, 32, seed=0)
    write_image_folder(images, str(root / 'train'), labels=labels)
    return str(root)


@pytest.fixture(scope='module')
def uncond_ckpt(tmp_path_factory):
    from mmengine.config import Config
    from mmpretrain.registry import MODELS

    import mage_mm.register  # noqa: F401
    torch.manual_seed(0)
    model = MODELS.build(dict(Config.fromfile(UNCOND_CFG).model, _scope_='mmpretrain'))
    model.init_weights()
    path = str(tmp_path_factory.mktemp('uncond') / 'mage_tiny.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict(note='random init')), path)
    return path, model.state_dict()


def run(cmd, timeout=600):
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1')
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=timeout)
    assert res.returncode == 0, f'{cmd}\nSTDOUT:\n{res.stdout[-4000:]}\nSTDERR:\n{res.stderr[-4000:]}'
    return res.stdout + res.stderr


def test_conditional_train_and_resume(labelled_root, uncond_ckpt, tmp_path):
    path, uncond_sd = uncond_ckpt
    work = str(tmp_path / 'work')
    common = [f'train_dataloader.dataset.data_root={labelled_root}', f'model.init_checkpoint={path}',
              'default_hooks.checkpoint.interval=3', 'default_hooks.logger.interval=1']
    log = run([sys.executable, 'tools/train.py', COND_CFG, '--work-dir', work, '--cfg-options',
               'train_cfg.max_iters=3', *common])
    losses = [float(x) for x in re.findall(r'\bloss: ([0-9.]+)', log)]
    assert len(losses) >= 3 and all(v == v for v in losses)
    assert re.search(r'null_fraction: [0-9.]+', log)  # label dropout is logged
    sd = safe_load(osp.join(work, 'iter_3.pth'))['state_dict']
    assert sd['neck.class_embed.weight'].shape == (6, 32) and sd['neck.class_embed.weight'].abs().sum() > 0
    # frozen encoder: the backbone is exactly the unconditional checkpoint's; the decoder moved
    for k, v in uncond_sd.items():
        if k.startswith('backbone.'):
            assert torch.equal(sd[k], v), k
    assert not torch.equal(sd['neck.decoder_embed.weight'], uncond_sd['neck.decoder_embed.weight'])
    # the dataset really was labelled: 5 class folders
    meta = json.dumps(sorted(os.listdir(osp.join(labelled_root, 'train'))))
    assert meta == json.dumps(['000', '001', '002', '003', '004'])

    log = run([sys.executable, 'tools/train.py', COND_CFG, '--work-dir', work, '--resume', '--cfg-options',
               'train_cfg.max_iters=5', *common])
    assert 'resumed epoch: 0, iter: 3' in log and re.search(r'Iter\(train\) \[5/5\]', log)
    sd5 = safe_load(osp.join(work, 'iter_5.pth'))['state_dict']
    assert not torch.equal(sd5['neck.class_embed.weight'], sd['neck.class_embed.weight'])
    assert torch.equal(sd5['backbone.blocks.0.attn.qkv.weight'], uncond_sd['backbone.blocks.0.attn.qkv.weight'])
