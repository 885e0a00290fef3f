"""Class accuracy of (generated) images judged by a classifier trained on real data.

The class-conditional counterpart of FID: a class-conditional generator should
make images that a classifier trained on the *real* training split assigns to
the class they were generated for. ``class_accuracy`` is the math (pure torch);
``classify_dataset`` runs an mmpretrain classifier (``ImageClassifier`` from a
config + checkpoint) over an mmpretrain ``CustomDataset``: either a class-folder
tree (real images) or a flat folder with an annotation file ``labels.txt``
(``<file name> <class id>`` per line, what ``tools/generate.py --classes``
writes). ``tools/analysis_tools/class_accuracy.py`` is the command line.
"""
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch

LABELS_FILE = 'labels.txt'


def class_accuracy(predictions: Union[Sequence[int], torch.Tensor], labels: Union[Sequence[int], torch.Tensor],
                   num_classes: Optional[int] = None) -> Dict[str, object]:
    """Top-1 accuracy overall and per class.

    Args:
        predictions (Sequence[int] | Tensor): (N,) predicted class ids.
        labels (Sequence[int] | Tensor): (N,) target class ids.
        num_classes (int, optional): Number of classes (per-class entries for
            all of them, ``None`` for classes without images). Defaults to
            ``max(labels) + 1``.

    Returns:
        dict: ``accuracy`` (%, over all images), ``mean_class_accuracy`` (%,
        mean over classes that have images: equal to ``accuracy`` for balanced
        sets), ``per_class`` (list of %), ``counts`` (images per class),
        ``num_images``, ``confusion`` (num_classes × num_classes counts,
        rows = target).

    Raises:
        ValueError: Empty input, length mismatch or ids outside ``[0, num_classes)``.
    """
    pred = torch.as_tensor(predictions).long().flatten()
    tgt = torch.as_tensor(labels).long().flatten()
    if pred.numel() == 0 or pred.numel() != tgt.numel():
        raise ValueError(f'need as many predictions as labels (> 0); got {pred.numel()} and {tgt.numel()}')
    k = int(tgt.max()) + 1 if num_classes is None else int(num_classes)
    for name, t in (('labels', tgt), ('predictions', pred)):
        if int(t.min()) < 0 or int(t.max()) >= k:
            raise ValueError(f'{name} hold class id {int(t.max()) if int(t.max()) >= k else int(t.min())} '
                             f'outside 0..{k - 1}')
    confusion = torch.zeros(k, k, dtype=torch.long)
    confusion.index_put_((tgt, pred), torch.ones_like(tgt), accumulate=True)
    counts = confusion.sum(1)
    correct = confusion.diag()
    per_class = [100.0 * int(c) / int(n) if n > 0 else None for c, n in zip(correct, counts)]
    present = [v for v in per_class if v is not None]
    return dict(accuracy=100.0 * int(correct.sum()) / int(counts.sum()),
                mean_class_accuracy=sum(present) / len(present), per_class=per_class, counts=counts.tolist(),
                num_images=int(counts.sum()), confusion=confusion.tolist())


def read_labels_file(path: str) -> List[Tuple[str, int]]:
    """``<file name> <class id>`` lines (mmpretrain's annotation-file format) → [(name, id)]."""
    items = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = line.rsplit(maxsplit=1)
            if len(parts) != 2 or not parts[1].lstrip('-').isdigit():
                raise ValueError(f'{path}:{n}: expected "<file name> <class id>", got {line.strip()!r}')
            items.append((parts[0], int(parts[1])))
    if not items:
        raise ValueError(f'{path} lists no images')
    return items


def labelled_dataset_cfg(folder: str, pipeline: list, labels_file: Optional[str] = None) -> dict:
    """An mmpretrain ``CustomDataset`` config for ``folder``.

    ``labels_file`` (default ``folder/labels.txt`` when it exists): a flat
    folder with an annotation file; otherwise ``folder`` must be a class-folder
    tree (classes are the sorted sub-folder names, as for training).
    """
    if not osp.isdir(folder):
        raise FileNotFoundError(f'image folder not found: {folder}')
    if labels_file is None and osp.isfile(osp.join(folder, LABELS_FILE)):
        labels_file = osp.join(folder, LABELS_FILE)
    cfg = dict(type='CustomDataset', data_root=folder, data_prefix='', with_label=True, pipeline=pipeline,
               test_mode=True)
    if labels_file is not None:
        if not osp.isfile(labels_file):
            raise FileNotFoundError(f'labels file not found: {labels_file}')
        cfg['ann_file'] = osp.abspath(labels_file)
    return cfg


def classifier_num_classes(model: torch.nn.Module) -> Optional[int]:
    """The class count of an mmpretrain classifier (its head's, else its backbone's, e.g. ``LeNet5``), or None."""
    for part in ('head', 'backbone'):
        n = getattr(getattr(model, part, None), 'num_classes', None)
        if isinstance(n, int) and n > 0:
            return n
    return None


@torch.no_grad()
def classify_dataset(model: torch.nn.Module, dataset, batch_size: int = 64,
                     progress=None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Run an mmpretrain classifier over a built dataset → (predictions, labels), both (N,) int64.

    Batches go through ``model.test_step`` (its data preprocessor included).
    A last batch of one image is padded with a copy of it: some mmpretrain
    backbones (``LeNet5``) ``squeeze()`` their features and break on batch 1.
    """
    from mmengine.dataset import default_collate
    model.eval()
    preds, labels = [], []
    n = len(dataset)
    if n == 0:
        raise ValueError('the dataset is empty')
    for start in range(0, n, batch_size):
        items = [dataset[i] for i in range(start, min(n, start + batch_size))]
        real = len(items)
        if real == 1:
            items = items * 2
        batch = default_collate(items)
        out = model.test_step(batch)[:real]
        preds += [int(o.pred_label.flatten()[0]) for o in out]
        labels += [int(o.gt_label.flatten()[0]) for o in out]
        if progress is not None:
            progress(real)
    return torch.tensor(preds), torch.tensor(labels)


def build_classifier(config: str, checkpoint: str, device: str = 'cpu'):
    """An mmpretrain classifier from ``config`` with ``checkpoint`` loaded strictly, and its test pipeline."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS

    from ..utils.checkpoint import safe_load
    cfg = Config.fromfile(config)
    if cfg.get('custom_imports'):
        import importlib
        for mod in cfg.custom_imports.get('imports', []):
            importlib.import_module(mod)
    init_default_scope('mmpretrain')
    model = MODELS.build(dict(cfg.model, _scope_='mmpretrain'))
    ckpt = safe_load(checkpoint, map_location='cpu')
    sd = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else ckpt
    model.load_state_dict({k[len('module.'):] if k.startswith('module.') else k: v for k, v in sd.items()},
                          strict=True)
    pipeline = cfg.test_dataloader.dataset.pipeline
    return model.to(device).eval(), list(pipeline)


def evaluate_folder(config: str, checkpoint: str, folder: str, labels_file: Optional[str] = None,
                    batch_size: int = 64, device: str = 'cpu', num_classes: Optional[int] = None,
                    progress=None) -> Dict[str, object]:
    """Class accuracy of the images in ``folder`` under the classifier (config, checkpoint)."""
    from mmpretrain.registry import DATASETS
    model, pipeline = build_classifier(config, checkpoint, device)
    dataset = DATASETS.build(labelled_dataset_cfg(folder, pipeline, labels_file))
    preds, labels = classify_dataset(model, dataset, batch_size, progress)
    result = class_accuracy(preds, labels, num_classes or classifier_num_classes(model))
    result.update(folder=osp.abspath(folder), classifier=dict(config=config, checkpoint=osp.abspath(checkpoint)))
    return result


__all__ = ['class_accuracy', 'classifier_num_classes', 'read_labels_file', 'labelled_dataset_cfg', 'classify_dataset',
           'build_classifier',
           'evaluate_folder', 'LABELS_FILE']
