"""A corrupt or truncated image in the FID and edit tools is an error that names the file."""
import numpy as np
import pytest
from generation_utils import TINY_GEN_CFG, save_random_tiny_checkpoint  # noqa: F401
from PIL import Image
from tool_utils import load_tool


def truncated_jpeg(path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(path, quality=95)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    return path


def test_fid_reference_stats_names_the_truncated_file(tmp_path):
    folder = tmp_path / 'real'
    folder.mkdir()
    for i in range(3):
        Image.new('RGB', (32, 32), (i * 40, 10, 10)).save(folder / f'{i}.png')
    bad = truncated_jpeg(folder / 'broken.jpg')
    with pytest.raises(ValueError, match=f'cannot read image {bad}'):
        load_tool('analysis_tools/fid_reference_stats').main([str(folder), '--out', str(tmp_path / 's.npz')])
    assert not (tmp_path / 's.npz').exists()
    with pytest.raises(ValueError, match=f'cannot read image {bad}'):
        load_tool('analysis_tools/compute_fid').main([str(folder), str(folder)])


def test_edit_names_the_truncated_image_and_mask(tmp_path):
    ckpt = save_random_tiny_checkpoint(str(tmp_path / 'tiny.pth'))
    bad = truncated_jpeg(tmp_path / 'photo.jpg')
    edit = load_tool('edit')
    with pytest.raises(ValueError, match=f'cannot read image {bad}'):
        edit.main([TINY_GEN_CFG, ckpt, '--image', str(bad), '--out', str(tmp_path / 'o.png'), '--task', 'inpaint'])
    good = tmp_path / 'good.png'
    Image.new('RGB', (32, 32)).save(good)
    with pytest.raises(ValueError, match=f'cannot read image {bad}'):
        edit.main([TINY_GEN_CFG, ckpt, '--image', str(good), '--mask', str(bad), '--out', str(tmp_path / 'o.png')])
    assert not (tmp_path / 'o.png').exists()
