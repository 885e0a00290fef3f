"""Class plans for class-conditional generation (``tools/generate.py --classes``): parsing, labels file, grid.

A run generates ``per_class`` images for each class of a list, class-major:
image ``i`` has class ``classes[i // per_class]`` and (per-image seeds) seed
``seed + i``, so it depends only on its seed and class. ``labels.txt`` in the
output folder lists ``<file> <class id>`` per image (mmpretrain's annotation
file format: the folder is a labelled ``CustomDataset`` for
``tools/analysis_tools/class_accuracy.py``).
"""
import re
from typing import List, Optional, Sequence

import numpy as np

LABELS_FILE = 'labels.txt'


def parse_classes(spec: str, num_classes: int) -> List[int]:
    """``'all'``, ``'3'``, ``'0,2,5'``, ``'0-4'`` or a mix (``'0-2,7'``) → sorted-as-given unique class ids.

    Raises:
        ValueError: Malformed spec, an empty or reversed range, a repeated id,
            or an id outside ``0 .. num_classes - 1`` (the message names it).
    """
    spec = str(spec).strip()
    if spec.lower() == 'all':
        return list(range(num_classes))
    classes: List[int] = []
    for part in spec.split(','):
        part = part.strip()
        single, span = re.fullmatch(r'-?\d+', part), re.fullmatch(r'(\d+)-(\d+)', part)
        if single:
            classes.append(int(part))
        elif span:
            lo, hi = int(span.group(1)), int(span.group(2))
            if hi < lo:
                raise ValueError(f'--classes: range {part!r} is reversed')
            classes += list(range(lo, hi + 1))
        else:
            raise ValueError(f"--classes: cannot read {part!r} in {spec!r}; use 'all', ids '0,3,7', ranges "
                             "'0-9' or a mix")
    bad = [c for c in classes if not 0 <= c < num_classes]
    if bad:
        raise ValueError(f'--classes: class id {bad[0]} is out of range: the model has {num_classes} classes '
                         f'(ids 0..{num_classes - 1})')
    if len(set(classes)) != len(classes):
        dup = next(c for c in classes if classes.count(c) > 1)
        raise ValueError(f'--classes: class {dup} is listed twice')
    return classes


def class_labels(classes: Sequence[int], per_class: int) -> List[int]:
    """The class of every image index: ``classes[i // per_class]``."""
    if per_class < 1:
        raise ValueError(f'--num-per-class must be >= 1; got {per_class}')
    return [int(c) for c in classes for _ in range(per_class)]


def labels_file_text(labels: Sequence[int], name_fn=lambda i: f'{i:06d}.png') -> str:
    """``<file> <class id>`` lines for images ``0 .. len(labels) - 1``."""
    return ''.join(f'{name_fn(i)} {int(c)}\n' for i, c in enumerate(labels))


def class_grid(images_by_index, labels: Sequence[int], classes: Sequence[int],
               per_row: Optional[int] = None, pad: int = 2) -> np.ndarray:
    """One row per class of ``classes``: its first ``per_row`` images (H, W, 3 uint8) side by side.

    Args:
        images_by_index (callable): ``i -> (H, W, 3) uint8`` image of index ``i``.
        labels (Sequence[int]): Class of every index.
        classes (Sequence[int]): Row order.
        per_row (int, optional): Images per row. Defaults to all of a class.
        pad (int): White border between images. Defaults to 2.
    """
    rows = []
    for c in classes:
        idx = [i for i, lab in enumerate(labels) if lab == c][:per_row]
        rows.append([images_by_index(i) for i in idx])
    ncol = max(len(r) for r in rows)
    h, w = rows[0][0].shape[:2]
    grid = np.full((len(rows) * (h + pad) + pad, ncol * (w + pad) + pad, 3), 255, dtype=np.uint8)
    for r, row in enumerate(rows):
        for c, img in enumerate(row):
            y, x = pad + r * (h + pad), pad + c * (w + pad)
            grid[y:y + h, x:x + w] = img
    return grid


__all__ = ['LABELS_FILE', 'parse_classes', 'class_labels', 'labels_file_text', 'class_grid']
