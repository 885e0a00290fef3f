"""Class-conditional MAGE fine-tuned from an unconditional one (registered as ``MAGECond``)."""
from typing import Dict, List, Optional, Set, Union

import torch
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from ...utils.checkpoint import check_state_dict_fits, read_state_dict, require_mage_layout
from .mage import MAGE

CLASS_EMBED_PREFIX = 'neck.class_embed.'


@MODELS.register_module()
class MAGECond(MAGE):
    """Class-conditional MAGE with classifier-free guidance training.

    The recipe of the MAGE paper's appendix (A.2) as its author describes it
    (LTH14/mage#16): an unconditional MAGE is fine-tuned with a **separate
    class embedding fed to the decoder** while the pre-trained **encoder stays
    frozen**; the encoder keeps its constant fake-class slot (id 1100 in the
    official weights). Nothing else is stated; our choices are marked (ours).

    One network, no copy: the class embedding is an option of the decoder
    (``neck=dict(type='MAGEPretrainDecoder', num_classes=K)``, key
    ``neck.class_embed.weight``, ``(K + 1, D_dec)``). Where it enters
    (``class_injection``, see :class:`MAGEPretrainDecoder`): by default (ours)
    the class vector is **added to every decoder input token** — the padded
    canvas (the embedded encoder output, the class-slot feature at every
    masked position) plus the learned decoder positions — before the first
    decoder block. That is the appendix's "concatenated with the padded
    feature" read as a per-token channel concatenation followed by a linear
    map. The table is zero-initialised (ours), so a fresh ``MAGECond`` computes
    exactly the logits of the unconditional MAGE it is loaded from.
    ``class_injection='token'`` (the sequence-concatenation reading) prepends
    the class vector as an extra decoder token instead.

    Training (loss as :class:`MAGE`): labels come from the data samples'
    ``gt_label`` (mmpretrain ``CustomDataset`` with class folders); each one is
    replaced by the null class ``K`` with probability ``p_uncond`` (label
    dropout for classifier-free guidance; 0.1 is ours, as MUSE and RCG).
    With ``train_encoder=False`` (default, the paper's recipe) the encoder
    (``backbone``: token embedding, blocks, final norm; the tokenizer is frozen
    anyway) gets ``requires_grad=False``, runs under ``no_grad`` and in eval
    mode (dropout off: it is a fixed feature extractor; ours); the decoder, the
    class embedding and the MLM head train. ``train_encoder=True`` trains all.

    Initialisation: ``init_checkpoint`` names an *unconditional* mage_mm MAGE
    checkpoint (pretraining Runner checkpoint, or an official one converted
    with ``tools/model_converters/mage_to_mmpretrain.py``). It is loaded by
    :meth:`init_weights` strictly: every key of the model must be in it except
    the class embedding, which must be missing, and nothing else may be left
    over (a conditional checkpoint of the same class count loads too).

    Args:
        num_classes (int): Number of real classes K (the null class is added).
            Set here or as ``neck.num_classes``; both must agree.
        p_uncond (float): Label-dropout probability. Defaults to 0.1.
        train_encoder (bool): Also train the encoder. Defaults to False.
        init_checkpoint (str, optional): Unconditional checkpoint loaded by
            :meth:`init_weights`. Defaults to None.
        **kwargs: :class:`MAGE` arguments (``backbone``, ``neck``, ``head``, the
            tokenizer, ``data_preprocessor``, ``init_cfg``...).

    Raises:
        ValueError: No class count, a class count that disagrees with the
            neck's, or ``p_uncond`` outside [0, 1].
    """

    def __init__(self,
                 num_classes: Optional[int] = None,
                 p_uncond: float = 0.1,
                 train_encoder: bool = False,
                 init_checkpoint: Optional[str] = None,
                 **kwargs) -> None:
        neck = dict(kwargs.get('neck') or {})
        neck_classes = neck.get('num_classes')
        if num_classes is None and neck_classes is None:
            raise ValueError('MAGECond needs the number of classes: set model.num_classes (or '
                             'model.neck.num_classes) to the dataset\'s class count; the null class is added')
        if num_classes is not None and neck_classes is not None and int(num_classes) != int(neck_classes):
            raise ValueError(f'model.num_classes={num_classes} but model.neck.num_classes={neck_classes}')
        neck['num_classes'] = int(num_classes if num_classes is not None else neck_classes)
        kwargs['neck'] = neck
        if not 0.0 <= float(p_uncond) <= 1.0:
            raise ValueError(f'p_uncond (label-dropout probability) must be in [0, 1]; got {p_uncond}')
        super().__init__(**kwargs)
        self.num_classes = neck['num_classes']
        self.p_uncond = float(p_uncond)
        self.train_encoder = bool(train_encoder)
        self.init_checkpoint = init_checkpoint
        if not self.train_encoder:
            self.backbone.requires_grad_(False)

    # ------------------------------------------------------------------ setup
    @property
    def class_embed(self):
        return self.neck.class_embed

    @property
    def null_class(self) -> int:
        return self.class_embed.null_class

    def train(self, mode: bool = True) -> 'MAGECond':
        super().train(mode)
        if not self.train_encoder:
            self.backbone.eval()  # frozen feature extractor: no dropout (ours)
        return self

    def init_weights(self) -> None:
        super().init_weights()
        if self.init_checkpoint:
            self.load_unconditional(self.init_checkpoint)
        if not self.train_encoder:
            self.backbone.requires_grad_(False)

    def class_embed_keys(self) -> Set[str]:
        return {k for k in self.state_dict() if k.startswith(CLASS_EMBED_PREFIX)}

    def load_unconditional(self, path: str) -> None:
        """Load an unconditional MAGE checkpoint strictly, all but the class embedding.

        Raises:
            ValueError: The checkpoint lacks other keys, has keys the model does
                not, or has tensors of other shapes (the message names them).
        """
        sd, _ = read_state_dict(path)
        require_mage_layout(sd, path)
        class_keys = self.class_embed_keys()
        check_state_dict_fits(self.state_dict(), sd, path,
                              f'this MAGECond (only {sorted(class_keys)} may be missing)', may_miss=class_keys)
        result = self.load_state_dict(sd, strict=False)
        # exactly the class embedding is new (or nothing, for a conditional checkpoint)
        assert set(result.missing_keys) in (class_keys, set()) and not result.unexpected_keys, result

    # --------------------------------------------------------------- labels
    def labels_from(self, data_samples: Optional[List[DataSample]], device=None) -> torch.Tensor:
        """``gt_label`` of each data sample → (B,) int64, validated against ``num_classes``."""
        if not data_samples or any('gt_label' not in ds for ds in data_samples):
            raise ValueError('MAGECond trains on labelled data but the data samples have no gt_label: use a '
                             "labelled dataset (e.g. CustomDataset with class folders, with_label=True) and "
                             "PackInputs")
        labels = []
        for ds in data_samples:
            lab = torch.as_tensor(ds.gt_label).flatten()
            if lab.numel() != 1:
                raise ValueError(f'MAGECond needs one class per image; got gt_label {lab.tolist()}')
            labels.append(lab)
        labels = torch.cat(labels)
        return self.class_embed.check_labels(labels, allow_null=False, what='dataset labels').to(device)

    def drop_labels(self, labels: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Replace each label by the null class with probability ``p_uncond`` (torch's global RNG)."""
        if self.p_uncond <= 0:
            return labels
        u = torch.rand(labels.shape, generator=generator, device='cpu' if generator is None else generator.device)
        return torch.where(u.to(labels.device) < self.p_uncond, torch.full_like(labels, self.null_class), labels)

    # ------------------------------------------------------------------ loss
    def loss(self, inputs: Union[torch.Tensor, List[torch.Tensor]], data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        """Masked token loss with the (label-dropped) class fed to the decoder."""
        if isinstance(inputs, (list, tuple)):
            inputs = inputs[0]
        labels = self.drop_labels(self.labels_from(data_samples, inputs.device))
        if inputs.is_floating_point():
            ids = self.tokenize(inputs)
        else:  # a labelled token cache (pretokenize.py --labels): its tokenizer identity and grid are checked
            from ..utils.token_ids import check_cached_ids
            ids = check_cached_ids(inputs, data_samples, self.backbone.tokenizer, self.backbone.num_tokens)
        with torch.set_grad_enabled(self.train_encoder and torch.is_grad_enabled()):
            out = self.backbone(ids, mask=True)
        feats = self.neck(out.latent, out.token_drop_mask, out.token_all_mask, labels=labels)
        loss = self.head.loss(feats, ids, out.token_all_mask, self.backbone.word_embeddings)
        if not torch.isfinite(loss):
            raise FloatingPointError(f'MAGECond loss is {loss.item()}; check the learning rate, the input range '
                                     '([0, 1] expected) and AMP settings')
        return dict(loss=loss, null_fraction=(labels == self.null_class).float().mean().detach())
