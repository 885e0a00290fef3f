"""Class-accuracy math and the labels-file reader."""
import pytest

from mage_mm.evaluation.class_accuracy import class_accuracy, labelled_dataset_cfg, read_labels_file


def test_class_accuracy_counts_and_confusion():
    res = class_accuracy([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 0], num_classes=4)
    assert res['num_images'] == 6 and res['counts'] == [2, 2, 2, 0]
    assert res['accuracy'] == pytest.approx(100 * 4 / 6)
    assert res['per_class'] == [50.0, 50.0, 100.0, None]
    assert res['mean_class_accuracy'] == pytest.approx(200 / 3)
    assert res['confusion'][0] == [1, 0, 1, 0] and res['confusion'][1] == [1, 1, 0, 0]
    with pytest.raises(ValueError, match='as many predictions as labels'):
        class_accuracy([0], [0, 1])
    with pytest.raises(ValueError, match='class id 5 outside 0..3'):
        class_accuracy([5], [0], num_classes=4)


def test_labels_file_and_dataset_cfg(tmp_path):
    (tmp_path / 'labels.txt').write_text('000000.png 3\n000001.png 0\n\n')
    assert read_labels_file(str(tmp_path / 'labels.txt')) == [('000000.png', 3), ('000001.png', 0)]
    cfg = labelled_dataset_cfg(str(tmp_path), pipeline=[])
    assert cfg['ann_file'].endswith('labels.txt') and cfg['with_label']
    (tmp_path / 'bad.txt').write_text('000000.png three\n')
    with pytest.raises(ValueError, match=r'bad.txt:1'):
        read_labels_file(str(tmp_path / 'bad.txt'))
    with pytest.raises(FileNotFoundError, match='image folder not found'):
        labelled_dataset_cfg(str(tmp_path / 'nope'), pipeline=[])
