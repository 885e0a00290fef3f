"""MAGE-C: MAGE with a contrastive loss on the encoder output (registered as ``MAGEC``)."""
from typing import Dict, List, Optional, Union

import torch
import torch.nn.functional as F
from mmpretrain.models.selfsup.simclr import GatherLayer, SimCLR
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from .mage import MAGE


@MODELS.register_module()
class MAGEC(MAGE):
    """MAGE-C, the contrastive variant of MAGE (paper Sec. 3; the official
    repository released checkpoints but no training code).

    Each image comes as two augmented views (mmpretrain ``MultiView``). Both
    views go through the usual MAGE pass (one masking ratio per iteration,
    token dropping, reconstruction loss averaged over the masked tokens of
    both views); the masked encoder output is pooled per view, projected by
    ``projector`` (e.g. ``NonLinearNeck``) and the two views of an image are a
    positive pair in a SimCLR / NT-Xent loss against every other view of the
    global batch (gathered across ranks), through ``contrastive_head``
    (``ContrastiveHead``, which owns the temperature).

    ``loss = loss_mage + contrastive_weight * loss_contrastive``.

    What is pooled: under token dropping the encoder output ``latent`` holds
    the class slot and the kept tokens (the visible ones and the masked ones
    that were not dropped), after the final norm. ``pool='kept'`` averages
    the kept image tokens (the masked analogue of the global pool used for
    linear probing); ``pool='cls'`` takes the class slot.

    Args:
        backbone, neck, head (dict): As :class:`MAGE` (the tokenizer inside the backbone).
        projector (dict): Projection MLP on the pooled (B, D) feature; called
            with a 1-tuple, returns a 1-tuple (``NonLinearNeck`` with
            ``with_avg_pool=False``).
        contrastive_head (dict): ``ContrastiveHead`` config (loss + temperature).
        contrastive_weight (float): Weight of the contrastive term. Defaults
            to 0.1 (our choice; the paper's value could not be checked).
        pool (str): ``'kept'`` or ``'cls'``. Defaults to ``'kept'``.
        pretrained, data_preprocessor, init_cfg: As :class:`MAGE`.
    """

    POOLS = ('kept', 'cls')

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 projector: dict,
                 contrastive_head: dict,
                 contrastive_weight: float = 0.1,
                 pool: str = 'kept',
                 pretrained: Optional[str] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        if pool not in self.POOLS:
            raise ValueError(f'pool must be one of {self.POOLS}, got {pool!r}')
        if contrastive_weight < 0:
            raise ValueError(f'contrastive_weight must be >= 0, got {contrastive_weight}')
        super().__init__(backbone=backbone, neck=neck, head=head, pretrained=pretrained,
                         data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.projector = MODELS.build(projector)
        self.contrastive_head = MODELS.build(contrastive_head)
        self.contrastive_weight = contrastive_weight
        self.pool = pool

    def pool_latent(self, latent: torch.Tensor) -> torch.Tensor:
        """Masked encoder output (B, 1 + kept, D) → (B, D)."""
        return latent[:, 1:].mean(dim=1) if self.pool == 'kept' else latent[:, 0]

    def contrastive_loss(self, z: torch.Tensor) -> torch.Tensor:
        """NT-Xent over projections ordered as view pairs ``(a0, b0, a1, b1, ...)``."""
        z = F.normalize(z, dim=1)
        z = torch.cat(GatherLayer.apply(z), dim=0)
        if z.shape[0] < 4:
            raise ValueError('the contrastive loss needs at least two images (four views) in the global batch')
        sim = z @ z.t()
        not_self, pos_idx, neg_mask = SimCLR._create_buffer(z.shape[0] // 2, sim.device)
        sim = torch.masked_select(sim, not_self == 1).reshape(sim.shape[0], -1)
        positive = sim[pos_idx].unsqueeze(1)
        negative = torch.masked_select(sim, neg_mask == 1).reshape(sim.shape[0], -1)
        return self.contrastive_head.loss(positive, negative)

    def loss(self, inputs: Union[torch.Tensor, List[torch.Tensor]], data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        """Reconstruction loss on both views + weighted contrastive loss between them."""
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            got = f'{len(inputs)} views' if isinstance(inputs, (list, tuple)) else 'a single tensor'
            raise ValueError(f'MAGE-C needs exactly two views per image (MultiView(num_views=2) in the '
                             f'pipeline); got {got}')
        # interleave the views so that the pairs stay adjacent after gathering across ranks
        images = torch.stack(list(inputs), dim=1).flatten(0, 1)
        ids = self.tokenize(images)
        out = self.backbone(ids, mask=True)
        feats = self.neck(out.latent, out.token_drop_mask, out.token_all_mask)
        loss_mage = self.head.loss(feats, ids, out.token_all_mask, self.backbone.word_embeddings)
        z = self.projector((self.pool_latent(out.latent), ))[0]
        loss_con = self.contrastive_loss(z)
        for name, value in (('reconstruction', loss_mage), ('contrastive', loss_con)):
            if not torch.isfinite(value):
                raise FloatingPointError(f'MAGE-C {name} loss is {value.item()}; check the learning rate, the '
                                         'input range ([0, 1] expected) and AMP settings')
        return dict(loss_mage=loss_mage, loss_contrastive=self.contrastive_weight * loss_con)
