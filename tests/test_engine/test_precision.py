"""The precision switch (mage_mm/engine/precision.py) through every entry point, bf16 on CPU.

Each tool runs on a tiny config with ``--precision bf16``: outputs are finite, bf16 training through
tools/train.py saves, resumes and continues; token ids stay exact (fp32 tokenising) unless asked.
"""
import glob
import json
import os.path as osp
import time
import warnings

import numpy as np
import pytest
import torch
from generation_utils import TINY_GEN_CFG, TINY_PRETRAIN_CFG, real_photo_folder, save_random_tiny_checkpoint
from mmengine.config import Config
from mmengine.registry import DefaultScope
from PIL import Image
from tool_utils import REPO_ROOT, load_tool

import mage_mm.utils.precision as precision_utils
from mage_mm.engine.precision import (
    AutocastTestLoop,
    AutocastValLoop,
    apply_precision,
    autocast_callable,
    autocast_dtype,
    check_precision,
    native_bf16,
    optim_wrapper_for,
    precision_context,
    resolve_precision,
)

LP_TINY = osp.join(REPO_ROOT, 'configs', 'mage', 'benchmarks', 'vit-tiny_1xb8-linear-coslr-2e_photo-crops-5cls-32px.py')
DET_TINY = osp.join(REPO_ROOT, 'configs', 'detection', 'vitdet_mask-rcnn_mage-vit-tiny_1xb2-4iters_photo-coco-64px.py')


@pytest.fixture(scope='module')
def photos(tmp_path_factory):
    return real_photo_folder(str(tmp_path_factory.mktemp('photos')), 16, 32, seed=3)


@pytest.fixture(scope='module')
def ckpt(tmp_path_factory):
    return save_random_tiny_checkpoint(str(tmp_path_factory.mktemp('ckpt') / 'tiny.pth'))


# ------------------------------------------------------------------ the mapping
def test_config_mapping_cpu_and_cuda():
    cfg = Config.fromfile(TINY_PRETRAIN_CFG)
    assert cfg.get('precision') is None
    before = cfg.to_dict()
    apply_precision(cfg)  # no key, no flag: untouched (fp32 default stays the config as written)
    assert cfg.to_dict() == before
    apply_precision(cfg, 'bf16', device='cpu')
    assert cfg.optim_wrapper.type == 'CPUAutocastOptimWrapper' and cfg.optim_wrapper.dtype == 'bfloat16'
    assert cfg.optim_wrapper.clip_grad == dict(max_norm=3.0) and cfg.precision == 'bf16'
    cuda = optim_wrapper_for(dict(type='OptimWrapper', optimizer=dict(type='AdamW')), 'fp16', 'cuda')
    assert cuda == dict(type='AmpOptimWrapper', optimizer=dict(type='AdamW'), dtype='float16', loss_scale='dynamic')
    assert optim_wrapper_for(cuda, 'fp32', 'cuda') == dict(type='OptimWrapper', optimizer=dict(type='AdamW'))
    with pytest.raises(ValueError, match='fp16.*CUDA'):
        check_precision('fp16', 'cpu', training=True)
    with pytest.raises(ValueError, match='precision must be one of'):
        check_precision('int8')
    # the tokenizer follows only when asked, on every MAGEVQGAN of the model
    cfg = Config.fromfile(LP_TINY)
    apply_precision(cfg, 'bf16', 'follow', device='cpu')
    assert cfg.model.backbone.tokenizer.autocast_encode is True
    assert cfg.val_cfg.type == 'AutocastValLoop' and cfg.test_cfg.type == 'AutocastTestLoop'
    cfg = Config.fromfile(DET_TINY)
    apply_precision(cfg, 'bf16', device='cpu')
    assert cfg.optim_wrapper.type == 'CPUAutocastOptimWrapper' and cfg.test_cfg.precision == 'bf16'
    gen = Config.fromfile(TINY_GEN_CFG)
    apply_precision(gen, 'bf16', device='cpu')
    assert gen.model.precision == 'bf16' and gen.test_cfg.type == 'MultiTestLoop'


# ------------------------------------------------------------------ 'auto'
def cpu_flags():
    try:
        with open('/proc/cpuinfo') as f:
            return next((line.split(':', 1)[1].split() for line in f if line.startswith('flags')), None)
    except OSError:
        return None


def test_native_bf16_matches_the_cpu_flags():
    flags = cpu_flags()
    if flags is None:
        pytest.skip('no /proc/cpuinfo flags on this machine')
    # oneDNN runs bf16 matmuls in hardware with AVX512-BF16 or AMX; without them it emulates them (slowly)
    assert native_bf16('cpu') == any(f in flags for f in ('avx512_bf16', 'amx_bf16'))
    assert native_bf16('mps') is False


@pytest.mark.parametrize('native', [True, False])
def test_auto_is_bf16_only_where_native(monkeypatch, native):
    monkeypatch.setattr(precision_utils, 'native_bf16', lambda device_type='cpu': native)
    expected = 'bf16' if native else 'fp32'
    assert resolve_precision('auto', 'cpu') == check_precision('auto', 'cpu', training=True) == expected
    assert resolve_precision('fp16', 'cuda') == 'fp16'  # an explicit name is never changed
    cfg = Config.fromfile(TINY_PRETRAIN_CFG)
    apply_precision(cfg, 'auto', device='cpu')
    assert cfg.precision == expected  # the config records what ran
    assert cfg.optim_wrapper.type == ('CPUAutocastOptimWrapper' if native else 'OptimWrapper')
    with precision_context('auto', 'cpu'):
        assert torch.is_autocast_enabled('cpu') is native
        lin = torch.nn.Linear(4, 4)
        assert lin(torch.randn(2, 4)).dtype == (torch.bfloat16 if native else torch.float32)
    with pytest.raises(ValueError, match='resolve it first'):
        autocast_dtype('auto')


def test_bf16_on_an_emulating_cpu_warns(monkeypatch):
    monkeypatch.setattr(precision_utils, 'native_bf16', lambda device_type='cpu': False)
    monkeypatch.setattr(precision_utils, '_warned_emulated', set())
    with pytest.warns(UserWarning, match='emulated'):
        assert check_precision('bf16', 'cpu') == 'bf16'  # still allowed: slow, not wrong
    monkeypatch.setattr(precision_utils, 'native_bf16', lambda device_type='cpu': True)
    monkeypatch.setattr(precision_utils, '_warned_emulated', set())
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        check_precision('bf16', 'cpu')


TOKENIZER_TINY = osp.join(REPO_ROOT, 'configs', 'tokenizer', 'vqgan_tiny-f4_1xb8-20iters_photo-crops-32px.py')


def test_multi_optimizer_config_gets_the_precision_per_wrapper():
    # the VQGAN trainer's optim_wrapper is mmagic's MultiOptimWrapperConstructor: one wrapper per sub-module
    cfg = Config.fromfile(TOKENIZER_TINY)
    apply_precision(cfg, 'bf16', device='cpu', fused_optimizer=True)
    ow = cfg.optim_wrapper
    assert ow.constructor == 'mmagic.MultiOptimWrapperConstructor' and 'type' not in ow
    assert set(ow) == {'constructor', 'tokenizer', 'discriminator'}
    for name in ('tokenizer', 'discriminator'):
        assert ow[name].type == 'CPUAutocastOptimWrapper' and ow[name].dtype == 'bfloat16'
        assert ow[name].optimizer.fused is True
    apply_precision(cfg, 'fp32', device='cpu')
    assert cfg.optim_wrapper.tokenizer.type == 'OptimWrapper' and 'dtype' not in cfg.optim_wrapper.tokenizer


@pytest.mark.integration
def test_tokenizer_trains_bf16_with_both_optimizers(photos, tmp_path):
    """tools/train.py --precision bf16 on the tokenizer config: the tokenizer and discriminator steps both run."""
    from mage_mm.utils.checkpoint import safe_load
    work = str(tmp_path / 'tok')
    load_tool('train').main([
        TOKENIZER_TINY, '--work-dir', work, '--precision', 'bf16', '--cfg-options',
        f'train_dataloader.dataset.data_root={photos}', f'val_dataloader.dataset.data_root={photos}',
        'train_cfg.max_iters=3', 'train_cfg.val_interval=3', 'model.disc_start=1', 'model.usage_window=2',
        'default_hooks.checkpoint.interval=3', 'default_hooks.logger.interval=1'])
    runs = sorted(glob.glob(osp.join(work, '*', 'vis_data', 'scalars.json')))
    with open(runs[-1]) as f:
        rows = [json.loads(line) for line in f if '"loss_pixel"' in line]
    assert [r['iter'] for r in rows] == [1, 2, 3]
    assert all(np.isfinite(r['loss_pixel']) for r in rows) and np.isfinite(rows[-1]['loss_disc'])
    meta_cfg = safe_load(osp.join(work, 'iter_3.pth'))['meta']['cfg']
    assert meta_cfg.count("type='CPUAutocastOptimWrapper'") == 2


def test_tokenizing_stays_fp32_under_bf16_unless_asked(photos):
    from mmpretrain.registry import MODELS
    images = torch.stack([torch.from_numpy(np.asarray(Image.open(p).convert('RGB'))).permute(2, 0, 1)
                          for p in sorted(glob.glob(osp.join(photos, '*.png')))]).float() / 255
    torch.manual_seed(0)
    vq = MODELS.build(dict(type='MAGEVQGAN', arch='tiny', _scope_='mmpretrain'))
    ref = vq.encode(images)
    with precision_context('bf16', 'cpu'):
        assert torch.equal(vq.encode(images), ref)
        vq.autocast_encode = True
        low = vq.encode(images)
        assert vq.encoder(images).dtype == torch.bfloat16  # it really ran in bf16
    assert low.shape == ref.shape


def test_autocast_callable_returns_fp32():
    lin = torch.nn.Linear(8, 4)
    out = autocast_callable(lin, 'bf16', 'cpu')(torch.randn(2, 8))
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    assert autocast_callable(lin, 'fp32', 'cpu') is lin


# ------------------------------------------------------------------ entry points
def losses(work):
    (log, ) = glob.glob(osp.join(work, '*', 'vis_data', 'scalars.json'))
    with open(log) as f:
        return [json.loads(line)['loss'] for line in f if '"loss"' in line]


@pytest.mark.integration
def test_train_bf16_saves_resumes_and_continues(photos, tmp_path):
    from mage_mm.utils.checkpoint import safe_load
    work = str(tmp_path / 'work')
    common = [f'train_dataloader.dataset.data_root={photos}', 'default_hooks.checkpoint.interval=2',
              'default_hooks.logger.interval=1']
    train = load_tool('train')
    train.main([TINY_PRETRAIN_CFG, '--work-dir', work, '--precision', 'bf16', '--cfg-options',
                'train_cfg.max_iters=4', *common])
    first = losses(work)
    assert len(first) == 4 and all(np.isfinite(first))
    ckpt = safe_load(osp.join(work, 'iter_4.pth'))
    assert ckpt['meta']['iter'] == 4 and "type='CPUAutocastOptimWrapper'" in ckpt['meta']['cfg']
    assert all(v.dtype == torch.float32 for k, v in ckpt['state_dict'].items() if v.is_floating_point())
    # resume from iter 2 and continue to 6, still in bf16 (the config key this time), in a work dir of its own.
    # mmengine names a run's logger and visualizer instances by the second it started and reuses an instance of
    # the same name in the same process, so a run starting within the same second would log into the first one.
    time.sleep(max(0.0, 1.05 - (time.time() % 1.0)))
    resumed = str(tmp_path / 'resumed')
    train.main([TINY_PRETRAIN_CFG, '--work-dir', resumed, '--resume', osp.join(work, 'iter_2.pth'), '--cfg-options',
                'precision=bf16', 'train_cfg.max_iters=6', *common])
    assert osp.isfile(osp.join(resumed, 'iter_6.pth'))
    assert safe_load(osp.join(resumed, 'iter_6.pth'))['meta']['iter'] == 6
    runs = sorted(glob.glob(osp.join(resumed, '*', 'vis_data', 'scalars.json')))
    assert len(runs) == 1
    with open(runs[-1]) as f:
        rows = [json.loads(line) for line in f if '"loss"' in line]
    assert [r['iter'] for r in rows] == [3, 4, 5, 6] and all(np.isfinite([r['loss'] for r in rows]))


@pytest.mark.integration
def test_probe_train_and_test_bf16(tmp_path):
    from mage_mm.datasets import packaged_photo_paths, random_crops, write_image_folder
    root = tmp_path / 'labelled'
    images, labels = random_crops(packaged_photo_paths()[:5], 12, 32, seed=0)
    write_image_folder(images[:8], str(root / 'train'), labels=labels[:8])
    write_image_folder(images[8:], str(root / 'val'), labels=labels[8:])
    mage = save_random_tiny_checkpoint(str(tmp_path / 'mage.pth'))
    data = [f'{k}.dataset.data_root={root}' for k in ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    ck = [f'model.backbone.init_cfg.checkpoint={mage}']  # the tokenizer comes with the backbone (backbone.tokenizer.*)
    work = str(tmp_path / 'probe')
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        load_tool('train').main([LP_TINY, '--work-dir', work, '--precision', 'bf16', '--cfg-options',
                                 'train_cfg.max_epochs=1', *ck, *data])
        metrics = load_tool('test').main([LP_TINY, osp.join(work, 'epoch_1.pth'), '--work-dir', work + '_t',
                                          '--precision', 'bf16', '--cfg-options', *data])
    assert 0.0 <= metrics['accuracy/top1'] <= 100.0 and np.isfinite(metrics['accuracy/top1'])


@pytest.mark.integration
def test_generate_edit_and_inferencer_bf16(ckpt, photos, tmp_path):
    out = tmp_path / 'gen'
    assert load_tool('generate').main([TINY_GEN_CFG, ckpt, '--num-images', '3', '--out-dir', str(out),
                                       '--batch-size', '3', '--precision', 'bf16', '--device', 'cpu',
                                       '--no-progress', '--grid', '0']) == 0
    imgs = sorted(glob.glob(str(out / '0*.png')))
    assert len(imgs) == 3 and np.asarray(Image.open(imgs[0])).shape == (32, 32, 3)
    assert load_tool('generate').main([TINY_GEN_CFG, ckpt, '--num-images', '1', '--out-dir', str(tmp_path / 'auto'),
                                       '--precision', 'auto', '--device', 'cpu', '--no-progress', '--grid', '0']) == 0
    src = sorted(glob.glob(osp.join(photos, '*.png')))[0]
    res = tmp_path / 'edit.png'
    load_tool('edit').main([TINY_GEN_CFG, ckpt, '--image', src, '--out', str(res), '--task', 'inpaint',
                            '--precision', 'bf16', '--device', 'cpu'])
    assert np.asarray(Image.open(res)).shape == (32, 32, 3)
    # the Python API and the mmagic inferencer path: the generator's precision (config key model.precision)
    from mage_mm.apis import init_generator
    assert init_generator(TINY_GEN_CFG, ckpt, precision='auto').precision == resolve_precision('auto', 'cpu')
    model = init_generator(TINY_GEN_CFG, ckpt, precision='bf16')
    assert model.precision == 'bf16'
    images = model.generate([0, 1], num_iter=2)
    assert images.dtype == torch.float32 and torch.isfinite(images).all()
    from mmagic.apis.inferencers import Inferencers
    cfg = Config.fromfile(TINY_GEN_CFG)
    cfg.model.precision = 'bf16'
    path = str(tmp_path / 'gen_bf16.py')
    cfg.dump(path)
    inferencer = Inferencers(task='unconditional', config=path, ckpt=ckpt, device='cpu',
                             extra_parameters=dict(num_batches=2))
    assert inferencer.inferencer.model.precision == 'bf16'
    first, images = inferencer(result_out_dir=str(tmp_path / 'inf.png'))
    assert images.shape == (2, 3, 32, 32) and torch.isfinite(images).all()
    assert osp.isfile(tmp_path / 'inf.png')


@pytest.mark.integration
def test_fid_tools_bf16(photos, tmp_path):
    try:
        from mage_mm.evaluation.inception import default_inception_path
        default_inception_path()
    except Exception as exc:  # noqa: BLE001  the TF-Inception weights are a package file
        pytest.skip(f'no TF-Inception weights: {exc}')
    stats = str(tmp_path / 'ref.npz')
    load_tool('analysis_tools/fid_reference_stats').main([photos, '--out', stats, '--precision', 'bf16',
                                                         '--batch-size', '8'])
    result = load_tool('analysis_tools/compute_fid').main([photos, stats, '--precision', 'bf16',
                                                          '--batch-size', '8'])
    assert np.isfinite(result['fid']) and abs(result['fid']) < 1.0  # same folder: ~0
    with pytest.raises(SystemExit):
        load_tool('analysis_tools/fid_reference_stats').main([photos, '--cache-dir', str(tmp_path / 'c'),
                                                             '--precision', 'bf16'])


def test_autocast_loops_registered():
    from mmengine.registry import LOOPS, OPTIM_WRAPPERS
    assert LOOPS.get('AutocastValLoop') is AutocastValLoop and LOOPS.get('AutocastTestLoop') is AutocastTestLoop
    assert OPTIM_WRAPPERS.get('CPUAutocastOptimWrapper') is not None
