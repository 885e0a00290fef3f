"""tools/generate.py: a tools/train.py checkpoint → PNGs, resume, batch/process independence, errors."""
import os
import os.path as osp
import sys

import numpy as np
import pytest
from generation_utils import ROOT, TINY_GEN_CFG, TINY_PRETRAIN_CFG, real_photo_folder  # noqa: F401
from PIL import Image
from tool_utils import load_tool
from tool_utils import run_checked as run

# every test uses the checkpoint of a tools/train.py subprocess run; some run generate.py under torchrun
pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _tool():
    return load_tool('generate')


generate = _tool()


@pytest.fixture(scope='module')
def training_run(tmp_path_factory):
    """Two iterations of the tiny pretraining config with tools/train.py on real photo crops.

    Run with ``-X importtime`` so that the import log can be checked too.
    """
    root = tmp_path_factory.mktemp('train')
    data = real_photo_folder(str(root / 'photos'), 16, 32, seed=5)
    log = run([sys.executable, '-X', 'importtime', 'tools/train.py', TINY_PRETRAIN_CFG, '--work-dir',
               str(root / 'work'), '--cfg-options', f'train_dataloader.dataset.data_root={data}',
               'train_cfg.max_iters=2', 'default_hooks.checkpoint.interval=2', 'default_hooks.logger.interval=1'])
    path = str(root / 'work' / 'iter_2.pth')
    assert osp.isfile(path)
    return path, log


@pytest.fixture(scope='module')
def trained_ckpt(training_run):
    return training_run[0]


def test_pretraining_never_imports_mmagic(training_run):
    """`import mage_mm` (what pretraining configs import) must not pull in mmagic; the generation
    modules do, and only generation configs import them."""
    imported = [line.split('|')[-1].strip() for line in training_run[1].splitlines() if line.startswith('import time:')]
    # custom_imports go through importlib.import_module, which -X importtime does not list: check what
    # mage_mm.register imports instead
    assert any(name == 'mage_mm.models.algorithms' for name in imported)
    assert any(name.startswith('mmpretrain') for name in imported)
    # (mmdet does get imported: by mmpretrain's own model zoo, mmpretrain/models/utils/res_layer_extra_norm.py)
    assert not [name for name in imported if name.split('.')[0] == 'mmagic']
    assert not [name for name in imported if name in ('mage_mm.models.generators.mage_generator',
                                                      'mage_mm.evaluation.metrics', 'mage_mm.models.detection')]


def pngs(folder):
    return sorted(f for f in os.listdir(folder) if f[:6].isdigit() and f.endswith('.png'))


def read(folder, name):
    return np.asarray(Image.open(osp.join(folder, name)))


def test_generate_resume_npz_and_batch_independence(trained_ckpt, tmp_path):
    out = str(tmp_path / 'gen')
    common = [TINY_GEN_CFG, trained_ckpt, '--out-dir', out, '--no-progress', '--grid', '4']
    generate.main([*common, '--num-images', '5', '--batch-size', '2', '--npz'])
    assert pngs(out) == [f'{i:06d}.png' for i in range(5)]
    first = {n: read(out, n) for n in pngs(out)}
    assert first['000000.png'].shape == (32, 32, 3) and first['000000.png'].dtype == np.uint8
    with np.load(osp.join(out, 'samples.npz')) as npz:  # streamed, same pixels as the PNGs
        assert npz['arr_0'].shape == (5, 32, 32, 3)
        assert all(np.array_equal(npz['arr_0'][i], first[f'{i:06d}.png']) for i in range(5))
    assert osp.isfile(osp.join(out, 'grid.png')) and osp.isfile(osp.join(out, 'generation.json'))

    # resume: delete one image, ask for one more with another batch size
    os.remove(osp.join(out, '000003.png'))
    stamps = {n: os.stat(osp.join(out, n)).st_mtime_ns for n in pngs(out)}
    generate.main([*common, '--num-images', '6', '--batch-size', '4'])
    assert pngs(out) == [f'{i:06d}.png' for i in range(6)]
    assert all(os.stat(osp.join(out, n)).st_mtime_ns == t for n, t in stamps.items())  # untouched
    # the regenerated image is identical: image i depends only on seed + i
    assert np.array_equal(read(out, '000003.png'), first['000003.png'])

    # other settings in the same folder are refused
    with pytest.raises(SystemExit, match='other settings'):
        generate.main([*common, '--num-images', '6', '--num-iter', '3'])


def test_two_processes_write_the_same_images(trained_ckpt, tmp_path):
    single, double = str(tmp_path / 'one'), str(tmp_path / 'two')
    args = [TINY_GEN_CFG, trained_ckpt, '--num-images', '4', '--batch-size', '3', '--no-progress', '--grid', '0']
    generate.main([*args, '--out-dir', single])
    log = run([sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2', '--master_port', '29641',
               'tools/generate.py', *args, '--out-dir', double])
    assert '2 process(es)' in log
    assert pngs(double) == pngs(single) == [f'{i:06d}.png' for i in range(4)]
    for n in pngs(single):
        assert np.array_equal(read(single, n), read(double, n)), n


def test_official_batch_seed_mode(trained_ckpt, tmp_path):
    """--seed-mode batch: batch b is one official gen_image(bsz, seed + b) call (RNG order of the official script)."""
    out = str(tmp_path / 'batch')
    generate.main([TINY_GEN_CFG, trained_ckpt, '--out-dir', out, '--num-images', '3', '--batch-size', '2',
                   '--seed-mode', 'batch', '--no-progress', '--grid', '0'])
    from mage_mm.apis import init_generator, to_uint8
    model = init_generator(TINY_GEN_CFG, trained_ckpt)
    second_batch = to_uint8(model.generate([1, 1], seed_mode='batch'))  # batch 1, seed 0 + 1, full batch of 2
    assert np.array_equal(read(out, '000002.png'), second_batch[0])


def test_bad_arguments(trained_ckpt, tmp_path, capsys):
    base = [TINY_GEN_CFG, trained_ckpt, '--out-dir', str(tmp_path / 'x')]
    for extra, message in ((['--num-images', '0'], '--num-images must be > 0'),
                           (['--num-images', '2', '--num-iter', '0'], 'decoding steps'),
                           (['--num-images', '2', '--batch-size', '0'], '--batch-size must be > 0')):
        with pytest.raises(SystemExit):
            generate.main([*base, *extra])
        assert message in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match='checkpoint not found'):
        generate.main([TINY_GEN_CFG, str(tmp_path / 'none.pth'), '--out-dir', str(tmp_path / 'y'), '--num-images', '1'])
    with pytest.raises(ValueError, match='tokenizer has 1024 codes but backbone.codebook_size is 256'):
        generate.main([*base, '--num-images', '1', '--cfg-options', 'model.backbone.tokenizer.arch=parity-tiny'])
