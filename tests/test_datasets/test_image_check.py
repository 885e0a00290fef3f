"""Empty, non-image and corrupt files of a dataset are found when it is built, naming the file (or skipped)."""
import io
import os.path as osp

import numpy as np
import pytest
from mmengine.registry import DefaultScope
from PIL import Image

import mage_mm.register  # noqa: F401
from mage_mm.datasets import BadImageError, CheckedImageDataset, check_image_file


def write_good(path, seed=0, fmt='PNG'):
    arr = np.random.default_rng(seed).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path, format=fmt)


def truncated(path, fmt):
    buf = io.BytesIO()
    arr = np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(arr).save(buf, format=fmt)
    data = buf.getvalue()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])


def test_check_image_file_reasons(tmp_path):
    write_good(tmp_path / 'good.png')
    (tmp_path / 'empty.png').write_bytes(b'')
    (tmp_path / 'text.jpg').write_text('not an image')
    truncated(tmp_path / 'cut.png', 'PNG')
    truncated(tmp_path / 'cut.jpg', 'JPEG')
    assert check_image_file(str(tmp_path / 'good.png')) is None
    assert check_image_file(str(tmp_path / 'empty.png')) == 'empty file (0 bytes)'
    assert check_image_file(str(tmp_path / 'text.jpg')) == 'not an image file'
    assert check_image_file(str(tmp_path / 'cut.png')).startswith('corrupt image')
    assert check_image_file(str(tmp_path / 'cut.jpg')).startswith('corrupt image')
    # the cheap mode sees less: a size check passes the text file
    assert check_image_file(str(tmp_path / 'text.jpg'), 'size') is None
    assert check_image_file(str(tmp_path / 'missing.png')).startswith('cannot read')


@pytest.fixture
def folder(tmp_path):
    for i in range(4):
        write_good(tmp_path / f'img_{i}.png', seed=i)
    (tmp_path / 'img_9_empty.png').write_bytes(b'')
    truncated(tmp_path / 'img_8_cut.jpg', 'JPEG')
    return tmp_path


def dataset_cfg(root):
    return dict(type='CustomDataset', data_root=str(root), data_prefix='', with_label=False,
                pipeline=[dict(type='LoadImageFromFile'), dict(type='PackInputs')])


def test_bad_files_raise_at_build_naming_them(folder):
    DefaultScope.get_instance('image-check-raise', scope_name='mmpretrain')
    with pytest.raises(BadImageError) as err:
        CheckedImageDataset(dataset_cfg(folder))
    msg = str(err.value)
    assert '2 of 6 files of CustomDataset' in msg
    assert osp.join(str(folder), 'img_9_empty.png') + ': empty file (0 bytes)' in msg
    assert osp.join(str(folder), 'img_8_cut.jpg') + ': corrupt image' in msg


def test_skip_leaves_them_out_with_a_count(folder):
    DefaultScope.get_instance('image-check-skip', scope_name='mmpretrain')
    ds = CheckedImageDataset(dataset_cfg(folder), on_error='skip')
    assert len(ds) == 4
    assert all('img_' in ds.get_data_info(i)['img_path'] and 'empty' not in ds.get_data_info(i)['img_path']
               for i in range(4))
    assert ds[0]['inputs'].shape[-2:] == (32, 32)
