"""tools/generate.py --classes / --guidance (class-conditional), and the class-accuracy tool on its output."""
import json
import os
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from PIL import Image
from tool_utils import load_tool

import mage_mm.register  # noqa: F401

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
UNCOND_CFG = osp.join(ROOT, 'configs', 'mage', 'mage_vit-tiny_1xb8-20iters_photo-crops-32px.py')
COND_CFG = osp.join(ROOT, 'configs', 'mage', 'mage-cond_vit-tiny_1xb8-20iters_photo-crops-5cls-32px.py')
GEN_CFG = osp.join(ROOT, 'configs', 'generation', 'mage-gen_vit-tiny_iter8-temp6_photo-crops-32px.py')
COND_GEN_CFG = osp.join(ROOT, 'configs', 'generation', 'mage-cond-gen_vit-tiny_iter8-temp6_photo-crops-5cls-32px.py')
LENET_CFG = osp.join(ROOT, 'configs', 'classifier', 'lenet5_1xb64-12e_fashion-mnist-32px.py')

pytestmark = pytest.mark.integration


@pytest.fixture(scope='module')
def cond_ckpt(tmp_path_factory):
    from mmpretrain.registry import MODELS
    torch.manual_seed(0)
    model = MODELS.build(dict(Config.fromfile(COND_CFG).model, _scope_='mmpretrain'))
    model.init_weights()
    with torch.no_grad():
        model.neck.class_embed.weight.normal_()
    path = str(tmp_path_factory.mktemp('cond') / 'cond.pth')
    torch.save(dict(state_dict=model.state_dict()), path)
    return path


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


GENERATE = load_tool('generate')  # in this process: the tool's main(argv), no interpreter start-up per call


def gen(args):
    assert GENERATE.main([*args, '--no-progress']) == 0


def gen_error(args, capsys) -> str:
    """The message of a refused run (SystemExit text or argparse's stderr)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as err:
        GENERATE.main([*args, '--no-progress'])
    return f'{err.value.code} {capsys.readouterr().err}'


def test_classes_all_balanced_resumable_and_batch_independent(cond_ckpt, tmp_path, capsys):
    out = str(tmp_path / 'all')
    common = [COND_GEN_CFG, cond_ckpt, '--classes', 'all', '--num-per-class', '3', '--guidance', '2.0']
    gen([*common, '--out-dir', out, '--batch-size', '4'])
    lines = [line.split() for line in open(osp.join(out, 'labels.txt')).read().splitlines()]
    assert [name for name, _ in lines] == [f'{i:06d}.png' for i in range(15)]
    labels = [int(c) for _, c in lines]
    assert labels == [c for c in range(5) for _ in range(3)]  # balanced, class-major
    assert all(osp.isfile(osp.join(out, name)) for name, _ in lines)
    settings = json.load(open(osp.join(out, 'generation.json')))['settings']
    assert settings['classes'] == [0, 1, 2, 3, 4] and settings['guidance'] == 2.0
    # the grid: one row per class, 3 images a row (32 px + 2 px borders)
    grid = np.asarray(Image.open(osp.join(out, 'grid.png')))
    assert grid.shape == (5 * 34 + 2, 3 * 34 + 2, 3)

    # resume: nothing to do; a deleted image is regenerated identically
    before = open(osp.join(out, '000007.png'), 'rb').read()
    os.remove(osp.join(out, '000007.png'))
    capsys.readouterr()
    gen([*common, '--out-dir', out, '--batch-size', '4'])
    assert 'rank 0 generates 1, skips 14' in capsys.readouterr().out
    assert open(osp.join(out, '000007.png'), 'rb').read() == before
    # other classes or guidance into the same folder: refused
    assert 'guidance differ' in gen_error([*common[:-1], '3.0', '--out-dir', out], capsys)
    msg = gen_error([COND_GEN_CFG, cond_ckpt, '--classes', '0-2', '--num-per-class', '3', '--guidance', '2.0',
                     '--out-dir', out], capsys)
    assert 'other settings (classes' in msg

    # image i depends only on its seed and class: another batch size, and a run of class 2 alone
    out1 = str(tmp_path / 'bs1')
    gen([*common, '--out-dir', out1, '--batch-size', '1', '--grid', '0'])
    for i in range(15):
        name = f'{i:06d}.png'
        assert open(osp.join(out, name), 'rb').read() == open(osp.join(out1, name), 'rb').read(), name


def test_class_option_errors(cond_ckpt, tmp_path, capsys):
    msg = gen_error([COND_GEN_CFG, cond_ckpt, '--classes', '0,7', '--num-per-class', '1', '--out-dir',
                     str(tmp_path / 'a')], capsys)
    assert 'class id 7 is out of range: the model has 5 classes' in msg
    msg = gen_error([COND_GEN_CFG, cond_ckpt, '--classes', 'all', '--out-dir', str(tmp_path / 'b')], capsys)
    assert '--num-per-class' in msg
    msg = gen_error([COND_GEN_CFG, cond_ckpt, '--classes', 'all', '--num-per-class', '1', '--guidance', '-1',
                     '--out-dir', str(tmp_path / 'c')], capsys)
    assert 'guidance scale must be a finite number >= 0' in msg
    msg = gen_error([COND_GEN_CFG, cond_ckpt, '--num-images', '2', '--guidance', '2', '--out-dir',
                     str(tmp_path / 'd')], capsys)
    assert 'need --classes' in msg
    # an unconditional config cannot take classes
    from mmpretrain.registry import MODELS
    model = MODELS.build(dict(Config.fromfile(UNCOND_CFG).model, _scope_='mmpretrain'))
    upath = str(tmp_path / 'u.pth')
    torch.save(dict(state_dict=model.state_dict()), upath)
    msg = gen_error([GEN_CFG, upath, '--classes', 'all', '--num-per-class', '1', '--out-dir', str(tmp_path / 'e')],
                    capsys)
    assert 'class-conditional generation config' in msg


def test_class_accuracy_tool_on_generated_and_real_folders(cond_ckpt, tmp_path):
    """The evaluation end to end on the tiny model: a LeNet-5 judge (random weights) over generated samples."""
    from mmpretrain.registry import MODELS

    from mage_mm.datasets import packaged_photo_paths, random_crops, write_image_folder
    out = str(tmp_path / 'samples')
    gen([COND_GEN_CFG, cond_ckpt, '--classes', 'all', '--num-per-class', '2', '--out-dir', out, '--grid', '0'])
    torch.manual_seed(0)
    judge = MODELS.build(dict(Config.fromfile(LENET_CFG).model, _scope_='mmpretrain'))
    jpath = str(tmp_path / 'lenet.pth')
    torch.save(dict(state_dict=judge.state_dict()), jpath)
    real = str(tmp_path / 'real')
    images, labels = random_crops(packaged_photo_paths()[:5], 11, 32, seed=0)  # 11: a last batch of one
    write_image_folder(images, real, labels=labels)
    result = str(tmp_path / 'acc.json')
    load_tool('analysis_tools/class_accuracy').main([LENET_CFG, jpath, out, real, '--batch-size', '5',
                                                      '--out', result])
    data = json.load(open(result))['results']
    gen_res, real_res = data[out], data[real]
    assert gen_res['num_images'] == 10 and gen_res['counts'][:5] == [2, 2, 2, 2, 2]
    assert real_res['num_images'] == 11 and sum(real_res['counts']) == 11
    # the tool's numbers are the judge's own predictions
    from mage_mm.evaluation.class_accuracy import evaluate_folder
    again = evaluate_folder(LENET_CFG, jpath, out, batch_size=3)
    assert again['accuracy'] == gen_res['accuracy'] and again['confusion'] == gen_res['confusion']
