"""tools/dataset_converters/prepare_fashion_mnist.py on a small slice of Debian's Fashion-MNIST."""
import gzip
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from tool_utils import REPO_ROOT as ROOT
from tool_utils import load_tool

TOOL = osp.join(ROOT, 'tools', 'dataset_converters', 'prepare_fashion_mnist.py')
_fm = load_tool('dataset_converters/prepare_fashion_mnist')
CLASSES, DEFAULT_ROOT, balanced_subset, class_dirs = _fm.CLASSES, _fm.DEFAULT_ROOT, _fm.balanced_subset, _fm.class_dirs
load_split, prepare_fashion_mnist, read_annotations = _fm.load_split, _fm.prepare_fashion_mnist, _fm.read_annotations
read_idx, to_rgb = _fm.read_idx, _fm.to_rgb


@pytest.fixture(scope='module')
def debian_files():
    if not osp.isfile(osp.join(DEFAULT_ROOT, 't10k-images-idx3-ubyte.gz')):
        # an optional system package outside the repository: skip with the reason, as the other optional files
        pytest.skip(f'Fashion-MNIST is not installed at {DEFAULT_ROOT}: apt-get install dataset-fashion-mnist '
                    '(tools/install_env.sh does)')
    return DEFAULT_ROOT


@pytest.fixture(scope='module')
def test_split(debian_files):
    return load_split('test', debian_files)


def test_reads_the_official_test_split(test_split):
    images, labels = test_split
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000, ) and np.bincount(labels).tolist() == [1000] * 10  # balanced, 10 classes
    assert 0 < images.mean() < 255


@pytest.mark.integration
def test_tool_on_a_small_slice(debian_files, test_split, tmp_path):
    out = str(tmp_path / 'fm')
    res = subprocess.run([sys.executable, TOOL, out, '--num-train', '30', '--num-test', '20', '--size', '32',
                          '--seed', '1'], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert '30 train / 20 test' in res.stdout
    info = json.load(open(osp.join(out, 'meta', 'fashion_mnist.json')))
    assert info['counts'] == {'train': 30, 'test': 20} and info['size'] == 32
    assert open(osp.join(out, 'meta', 'classes.txt')).read().split('\n')[:10] == list(CLASSES)
    assert sorted(os.listdir(osp.join(out, 'train'))) == class_dirs()  # sorted folders = original label order

    test_images, test_labels = test_split
    for split, n in (('train', 30), ('test', 20)):
        ann = read_annotations(osp.join(out, 'meta', f'{split}.txt'))
        assert len(ann) == n
        counts = np.bincount([label for _, label in ann], minlength=10)
        assert counts.max() - counts.min() <= 1  # class-balanced subset
        for rel, label in ann:
            folder, fname = rel.split('/')
            assert folder == class_dirs()[label] and fname.startswith(split + '_')
            im = np.asarray(Image.open(osp.join(out, split, rel)))
            assert im.shape == (32, 32, 3) and im.dtype == np.uint8
            assert np.array_equal(im[..., 0], im[..., 1]) and np.array_equal(im[..., 1], im[..., 2])  # grey as RGB
    # a test image is the bicubic resize of the source image with the file's index, under its true label
    rel, label = read_annotations(osp.join(out, 'meta', 'test.txt'))[0]
    index = int(rel.split('_')[-1].split('.')[0])
    assert test_labels[index] == label
    expected = np.asarray(Image.fromarray(test_images[index], 'L').resize((32, 32), Image.BICUBIC))
    assert np.array_equal(np.asarray(Image.open(osp.join(out, 'test', rel)))[..., 0], expected)
    # the held-out split really is the official test file, never the training one
    train_ann = read_annotations(osp.join(out, 'meta', 'train.txt'))
    assert all(r.split('/')[1].startswith('train_') for r, _ in train_ann)

    # mmpretrain reads the folder: with the annotation file (labels) and by scanning (self-supervised)
    from mmpretrain.datasets import CustomDataset
    labelled = CustomDataset(data_root=out, data_prefix='test', ann_file='meta/test.txt', pipeline=[])
    assert len(labelled) == 20 and labelled[0]['gt_label'] == label
    unlabelled = CustomDataset(data_root=out, data_prefix='train', with_label=False, pipeline=[])
    assert len(unlabelled) == 30
    folder_labels = CustomDataset(data_root=out, data_prefix='train', pipeline=[])
    assert [folder_labels[i]['gt_label'] for i in range(30)] == sorted(label for _, label in train_ann)

    # re-running replaces its own output; a folder it did not write is refused
    assert prepare_fashion_mnist(out, size=16, num_train=10, num_test=10, root=debian_files) == dict(train=10,
                                                                                                    test=10)
    assert len(read_annotations(osp.join(out, 'meta', 'train.txt'))) == 10
    assert Image.open(osp.join(out, 'train', read_annotations(osp.join(out, 'meta', 'train.txt'))[0][0])).size \
        == (16, 16)
    foreign = tmp_path / 'foreign'
    (foreign / 'train').mkdir(parents=True)
    (foreign / 'train' / 'mine.png').write_bytes(b'x')
    with pytest.raises(FileExistsError, match='not written by prepare_fashion_mnist'):
        prepare_fashion_mnist(str(foreign), num_train=10, num_test=10, root=debian_files)


def test_missing_source_names_the_debian_package(tmp_path, capsys):
    tool = load_tool('dataset_converters/prepare_fashion_mnist')
    assert tool.main([str(tmp_path / 'out'), '--root', str(tmp_path / 'none')]) == 1
    err = capsys.readouterr().err
    assert 'apt-get install dataset-fashion-mnist' in err and 'train-images-idx3-ubyte.gz' in err
    assert not osp.exists(tmp_path / 'out' / 'train')  # nothing written


def test_idx_parser_checks_its_input(tmp_path):
    good = tmp_path / 'ok-idx3-ubyte.gz'
    with gzip.open(good, 'wb') as f:
        f.write(bytes([0, 0, 8, 3]) + (2).to_bytes(4, 'big') + (2).to_bytes(4, 'big') + (3).to_bytes(4, 'big')
                + bytes(range(12)))
    assert read_idx(str(good)).tolist() == [[[0, 1, 2], [3, 4, 5]], [[6, 7, 8], [9, 10, 11]]]
    bad_magic = tmp_path / 'bad'
    bad_magic.write_bytes(bytes([0, 0, 9, 1]) + (1).to_bytes(4, 'big') + b'\x00')
    with pytest.raises(ValueError, match='not an unsigned-byte IDX'):
        read_idx(str(bad_magic))
    short = tmp_path / 'short'
    short.write_bytes(bytes([0, 0, 8, 1]) + (5).to_bytes(4, 'big') + b'\x00\x01')
    with pytest.raises(ValueError, match='header says'):
        read_idx(str(short))


def test_balanced_subset_and_rgb_conversion():
    labels = np.repeat(np.arange(10), 7)
    idx = balanced_subset(labels, 25, seed=0)
    assert len(idx) == 25 and len(set(idx.tolist())) == 25
    assert sorted(np.bincount(labels[idx]).tolist()) == [2] * 5 + [3] * 5
    assert np.array_equal(balanced_subset(labels, None), np.arange(70))
    assert np.array_equal(balanced_subset(labels, 25, seed=0), idx)  # seeded
    grey = np.arange(28 * 28, dtype=np.uint8).reshape(1, 28, 28)
    rgb = to_rgb(grey, 28)
    assert rgb.shape == (1, 28, 28, 3) and np.array_equal(rgb[0, ..., 2], grey[0])
    with pytest.raises(ValueError, match='positive'):
        balanced_subset(labels, 0)
