"""Learned class embedding for class-conditional MAGE (num_classes + 1 null class).

Used by :class:`MAGEPretrainDecoder` when it is built with ``num_classes``; the
checkpoint key is ``neck.class_embed.weight`` of shape ``(num_classes + 1, D_dec)``.
"""
from typing import Optional

import torch
import torch.nn as nn


class ClassEmbedding(nn.Module):
    """A ``(num_classes + 1, embed_dims)`` table; row ``num_classes`` is the null class.

    The null class stands for "no class" (classifier-free guidance: labels are
    dropped to it during training, and the unconditional pass of guided
    sampling uses it). The table is **zero-initialised** (our choice, the paper
    is silent): a fresh conditional decoder whose class vector is added to its
    tokens computes exactly what the unconditional decoder it starts from does.

    Args:
        num_classes (int): Real classes (labels ``0 .. num_classes - 1``).
        embed_dims (int): Width of the vectors (the decoder width).

    Raises:
        ValueError: ``num_classes`` is not a positive integer.
    """

    def __init__(self, num_classes: int, embed_dims: int) -> None:
        super().__init__()
        if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
            raise ValueError(f'num_classes must be a positive integer (the number of dataset classes; the null '
                             f'class is added); got {num_classes!r}')
        self.num_classes = num_classes
        self.embed_dims = embed_dims
        self.weight = nn.Parameter(torch.zeros(num_classes + 1, embed_dims))

    @property
    def null_class(self) -> int:
        """Index of the null ("unconditional") class: ``num_classes``."""
        return self.num_classes

    def reset_parameters(self) -> None:
        nn.init.zeros_(self.weight)

    def check_labels(self, labels: torch.Tensor, allow_null: bool = True, what: str = 'labels') -> torch.Tensor:
        """Validate ``labels`` (B,) integer class ids; returns them as int64.

        Args:
            labels (Tensor): (B,) or (B, 1) class ids.
            allow_null (bool): Accept the null class ``num_classes``. Defaults to True.
            what (str): Name used in the error message. Defaults to ``'labels'``.

        Raises:
            ValueError: Not integers, wrong shape, or an id out of range (the
                message names the offending value and the valid range).
        """
        labels = torch.as_tensor(labels)
        if labels.dim() == 2 and labels.shape[1] == 1:
            labels = labels[:, 0]
        if labels.dim() != 1:
            raise ValueError(f'{what} must be a (B,) tensor of class ids; got shape {tuple(labels.shape)}')
        if labels.is_floating_point() or labels.dtype == torch.bool or labels.is_complex():
            raise ValueError(f'{what} must be integer class ids; got dtype {labels.dtype}')
        labels = labels.long()
        top = self.num_classes if allow_null else self.num_classes - 1
        if labels.numel():
            lo, hi = int(labels.min()), int(labels.max())
            if lo < 0 or hi > top:
                bad = lo if lo < 0 else hi
                null = f' or the null class {self.null_class}' if allow_null else ''
                raise ValueError(f'{what} contain class id {bad}, out of range: the model has num_classes='
                                 f'{self.num_classes} (ids 0..{self.num_classes - 1}{null})')
        return labels

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        """Class ids (B,) in ``[0, num_classes]`` → vectors (B, embed_dims)."""
        labels = self.check_labels(labels).to(self.weight.device)
        return self.weight[labels]

    def null_labels(self, batch_size: int, device: Optional[torch.device] = None) -> torch.Tensor:
        """(B,) tensor filled with the null class."""
        return torch.full((batch_size, ), self.null_class, dtype=torch.long, device=device)

    def extra_repr(self) -> str:
        return f'num_classes={self.num_classes} (+1 null), embed_dims={self.embed_dims}'
