"""MAGE image generation and editing: :class:`MAGEGenerator`, importable without mmagic.

This module imports neither mmagic nor anything that imports it (diffusers): ``tools/generate.py``,
``tools/edit.py`` and :func:`mage_mm.apis.init_generator` build the class from here, and a process that only
generates never pays mmagic's import weight (measured: 1,255 MB of RSS after the imports with mmagic against
about 500 without, README "Performance"). mmagic is imported only where its own objects are needed: the data
preprocessor (built on first use of :attr:`MAGEGenerator.data_preprocessor`) and ``DataSample`` (the outputs of
``forward``, mmagic's interface). The leaf module :mod:`mage_mm.models.generators.mage_generator` registers the
class in mmagic's ``MODELS`` for configs, mmagic's CLIs and ``Inferencers``.
"""
import contextlib
from copy import deepcopy
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS

from ...utils.allocator import release_free_heap
from ...utils.precision import check_precision, precision_context
from ..utils.mage_network import MAGENetworkMixin
from .decoding import DecodingOptions, build_sampler, iterative_decode, token_mask_from_pixels


class EditResult(NamedTuple):
    """Output of :meth:`MAGEGenerator.edit` (images RGB in [0, 1], input size).

    Attributes:
        images (Tensor): (B, 3, H, W) result; known pixels pasted back when
            ``paste_back`` (the default), else equal to ``decoded``.
        decoded (Tensor): (B, 3, H, W) the tokenizer's decoding of the edited map.
        token_mask (Tensor): (B, N) bool, True where tokens were regenerated.
        input_ids (Tensor): (B, N) tokens of the input image.
        token_ids (Tensor): (B, N) edited tokens (equal to ``input_ids`` where
            ``token_mask`` is False).
    """
    images: torch.Tensor
    decoded: torch.Tensor
    token_mask: torch.Tensor
    input_ids: torch.Tensor
    token_ids: torch.Tensor


def _with_scope(cfg: Union[dict, Any], scope: str) -> Union[dict, Any]:
    # build the part in its own package's registry whatever the caller's default scope is
    if isinstance(cfg, dict):
        cfg = dict(cfg)
        cfg.setdefault('_scope_', scope)
    return cfg


#: the data preprocessor of a config that names none: mmagic's, mean 0 / std 255, RGB model input
DEFAULT_DATA_PREPROCESSOR = dict(type='DataPreprocessor', mean=[0., 0., 0.], std=[255., 255., 255.],
                                 output_channel_order='RGB')
_RGB_MESSAGE = ('MAGEGenerator works on RGB images (the tokenizer was trained on RGB); set '
                "data_preprocessor.output_channel_order='RGB'")


def _check_rgb_config(cfg: dict) -> None:
    # mmagic's DataPreprocessor keeps the input order unless output_channel_order says otherwise (its default is
    # None): checked on the config already, so a wrong config fails when the model is built, not on first use
    scope = cfg.get('_scope_', 'mmagic')
    if cfg.get('type') == 'DataPreprocessor' and scope == 'mmagic' and cfg.get('output_channel_order') != 'RGB':
        raise ValueError(_RGB_MESSAGE)


def _check_rgb_module(module: torch.nn.Module) -> None:
    if getattr(module, 'output_channel_order', 'RGB') != 'RGB':
        raise ValueError(_RGB_MESSAGE)


def data_sample_cls():
    """mmagic's ``DataSample`` (imported on first use: only mmagic's interface of the generators needs it)."""
    from mmagic.structures import DataSample
    return DataSample


SeedsType = Optional[Union[Sequence[int], torch.Tensor]]


class SampleInputs(NamedTuple):
    """The parts of mmagic's sampling ``inputs`` common to every generator (see :func:`parse_sample_inputs`).

    Attributes:
        inputs (dict): A copy of the inputs as a dict (a seed tensor becomes
            ``dict(noise=...)``).
        sample_model (str): Always ``'orig'`` (there is no EMA copy).
        sample_kwargs (dict): A copy of ``inputs['sample_kwargs']`` without
            ``seeds``; the caller pops what else it reads and passes the rest
            on as decoding options.
        seeds (Tensor or Sequence[int] or None): Per-image seeds from
            ``noise`` or ``sample_kwargs['seeds']``; None when neither is given.
    """
    inputs: dict
    sample_model: str
    sample_kwargs: dict
    seeds: SeedsType


def parse_sample_inputs(inputs: Union[dict, torch.Tensor, None], owner: str = 'MAGEGenerator') -> SampleInputs:
    """Normalise mmagic's sampling ``inputs`` and pick out the sample model and the seeds.

    Args:
        inputs (dict or Tensor or None): ``forward``'s inputs: a dict (keys
            ``noise``, ``sample_model``, ``sample_kwargs``, ...), a seed tensor
            (the ``noise``), or None (an empty dict).
        owner (str): Class name used in the error messages. Defaults to
            ``'MAGEGenerator'``.

    Returns:
        SampleInputs: The normalised inputs, ``'orig'``, the remaining
        ``sample_kwargs`` and the seeds (None when not given).

    Raises:
        ValueError: ``sample_model`` is not ``'orig'``, or seeds are given both
            as ``noise`` and as ``sample_kwargs['seeds']``.
    """
    if isinstance(inputs, torch.Tensor):
        inputs = dict(noise=inputs)
    # copies: the caller's dicts stay untouched (outputs echo the original sample_kwargs)
    inputs = dict(inputs or {})
    sample_model = inputs.get('sample_model') or 'orig'
    if sample_model != 'orig':
        raise ValueError(f"{owner} has no EMA copy; sample_model must be 'orig', got {sample_model!r}")
    sample_kwargs = dict(inputs.get('sample_kwargs') or {})
    noise = inputs.get('noise')
    seeds = sample_kwargs.pop('seeds', None)
    if noise is not None and seeds is not None:
        raise ValueError('give the seeds either as noise or as sample_kwargs.seeds, not both')
    seeds = noise if noise is not None else seeds
    return SampleInputs(inputs, sample_model, sample_kwargs, seeds)


class MAGEGenerator(MAGENetworkMixin, BaseModel):
    """Unconditional MAGE image generation and editing by iterative decoding.

    Holds the same parts as the mmpretrain :class:`MAGE` algorithm, under the
    same names (``backbone`` with its ``tokenizer``, ``neck``, ``head``), so a
    mage_mm MAGE checkpoint (or an official one converted with
    ``tools/model_converters/mage_to_mmpretrain.py``) loads with no key
    remapping. One decoding step is the MAGE network call
    (:class:`~mage_mm.models.utils.mage_network.MAGENetworkMixin`, shared with
    :class:`MAGE`) with nothing dropped.

    Importing this class imports no mmagic (so generating with the Python API
    or the tools does not either); :mod:`mage_mm.models.generators.mage_generator`
    registers it in mmagic's ``MODELS``.

    mmagic sampling contract (as ``BaseGAN``): ``forward(inputs=dict(
    num_batches=N, noise=None, sample_model='orig', sample_kwargs=dict(...)))``
    returns one :class:`DataSample` per image with ``fake_img`` (BGR, 0–255,
    after ``data_preprocessor.destruct``), ``noise`` (the image's seed: it
    determines the image), ``latent`` (the token map), ``sample_kwargs`` and
    ``sample_model``. ``noise`` may be given as an int64 tensor of seeds;
    otherwise seeds are drawn from torch's global RNG. ``sample_kwargs`` may
    override any :class:`DecodingOptions` field and pass ``seeds``.

    Editing: ``forward(masked_images, data_samples)`` with ``data_samples.mask``
    (mmagic's inpainting convention, 1 = hole) returns data samples whose
    ``output`` holds ``pred_img`` / ``fake_img`` (known pixels pasted back) and
    ``fake_res`` (the raw decoding), so ``Inferencers(task='inpainting', ...)``
    works; :meth:`edit` is the Python API.

    The decoding keyword arguments below form the model's
    :class:`DecodingOptions` (validated once, when the model is built; the
    same checks and messages as :func:`iterative_decode` and the tools).

    Args:
        backbone (dict): ``MAGEViT`` config (mmpretrain) with its ``tokenizer``
            (a ``MAGEVQGAN`` config).
        neck (dict): ``MAGEPretrainDecoder`` config.
        head (dict): ``MAGEPretrainHead`` config.
        data_preprocessor (dict | nn.Module, optional): mmagic ``DataPreprocessor``;
            defaults to mean 0 / std 255 with RGB model input, i.e. the model
            works on RGB images in [0, 1] like the official code. A config
            dict is built (in mmagic's registry) on first use of
            :attr:`data_preprocessor`: only mmagic's interface (``forward``,
            ``val_step``, ``test_step``) uses it, and building it imports mmagic.
        num_iter (int): Decoding steps. Defaults to 20 (official README).
        choice_temperature (float): Gumbel temperature on the confidences,
            annealed linearly to 0. Defaults to 6.0 (official README).
        schedule (str): ``'cosine'`` (official), ``'linear'`` or ``'arccos'``.
        sampling_temperature (float): Temperature of the candidate draw.
            Defaults to 1.0 (official).
        top_k (int, optional): Draw candidates among the k best codes
            (``k >= 1``); None: all codes (official). Defaults to None.
        per_sample_mask_len (bool): Per-image keep-masked counts (the official
            code shares the first image's). Defaults to False.
        seed_mode (str): ``'per_image'``: image i depends only on its seed
            (any batch size or number of processes); ``'batch'``: the official
            RNG order, one stream per batch seeded with the first seed.
            Defaults to ``'per_image'``.
        edit_schedule_base (str): Schedule base for editing: ``'unknown'``
            (the schedule runs over the tokens to regenerate) or ``'all'`` (the
            official constant N). Defaults to ``'unknown'``.
        edit_per_sample_mask_len (bool): Per-image counts when editing (the
            images of a batch may have different masks). Defaults to True.
        precision (str): ``'fp32'`` (faithful), ``'bf16'``, ``'fp16'`` or
            ``'auto'`` (bf16 where the device runs it natively, else fp32): the
            decoding steps and the VQGAN decode run under that autocast (the
            decoder channels-last, the layout low-precision convolutions want)
            (:mod:`mage_mm.engine.precision`); encoding an image to edit stays
            fp32 (``MAGEVQGAN.autocast_encode``). Defaults to ``'fp32'``.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 data_preprocessor: Optional[Union[dict, torch.nn.Module]] = None,
                 num_iter: int = 20,
                 choice_temperature: float = 6.0,
                 schedule: str = 'cosine',
                 sampling_temperature: float = 1.0,
                 top_k: Optional[int] = None,
                 per_sample_mask_len: bool = False,
                 seed_mode: str = 'per_image',
                 edit_schedule_base: str = 'unknown',
                 edit_per_sample_mask_len: bool = True,
                 precision: str = 'fp32',
                 init_cfg: Optional[dict] = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = deepcopy(DEFAULT_DATA_PREPROCESSOR)
        lazy_cfg = None
        if isinstance(data_preprocessor, dict):
            lazy_cfg = _with_scope(data_preprocessor, 'mmagic')
            _check_rgb_config(lazy_cfg)
            data_preprocessor = None  # BaseModel's placeholder, dropped below
        else:
            _check_rgb_module(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if lazy_cfg is not None:
            # built on first use (the `data_preprocessor` property): building mmagic's imports mmagic (and
            # diffusers), which generating through the Python API or the tools never needs; its mean/std are
            # non-persistent buffers, so the state dict is the same either way
            del self._modules['data_preprocessor']
            self._data_preprocessor_cfg = lazy_cfg
        self.backbone = MMPRETRAIN_MODELS.build(_with_scope(backbone, 'mmpretrain'))
        self.neck = MMPRETRAIN_MODELS.build(_with_scope(neck, 'mmpretrain'))
        self.head = MMPRETRAIN_MODELS.build(_with_scope(head, 'mmpretrain'))
        self._check_compatible()
        self.decoding = DecodingOptions(num_iter=num_iter, choice_temperature=choice_temperature, schedule=schedule,
                                        sampling_temperature=sampling_temperature, top_k=top_k,
                                        per_sample_mask_len=per_sample_mask_len, schedule_base='all',
                                        seed_mode=seed_mode)
        self.edit_decoding = self.decoding.replace(schedule_base=edit_schedule_base,
                                                   per_sample_mask_len=edit_per_sample_mask_len)
        self.precision = check_precision(precision, 'cuda' if torch.cuda.is_available() else 'cpu')

    # -------------------------------------------------------- preprocessor
    @property
    def data_preprocessor(self) -> torch.nn.Module:
        """The mmagic data preprocessor, built (importing mmagic) the first time it is asked for."""
        module = self.__dict__.get('_modules', {}).get('data_preprocessor')
        if module is None:
            from mmagic.registry import MODELS as MMAGIC_MODELS
            module = MMAGIC_MODELS.build(self._data_preprocessor_cfg)
            _check_rgb_module(module)
            # BaseModel.to() set the device of the preprocessors it held; this one follows the network
            module.to(self.backbone.word_embeddings.device)
            self.data_preprocessor = module  # nn.Module.__setattr__: a registered sub-module from now on
        return module

    # ------------------------------------------------------------------ sizes
    @property
    def token_grid(self):
        return self.backbone.token_grid

    @property
    def image_size(self):
        """(H, W) of generated images: token grid × the tokenizer's downsampling factor."""
        f = self.tokenizer.downsample_factor
        return self.token_grid[0] * f, self.token_grid[1] * f

    @property
    def mask_id(self) -> int:
        return self.backbone.mask_id

    # --------------------------------------------------------------- helpers
    def decoding_options(self, overrides: Optional[Dict[str, Any]] = None, editing: bool = False) -> DecodingOptions:
        """The model's :class:`DecodingOptions` (its editing variant when ``editing``) with ``overrides``.

        Raises:
            ValueError: An unknown option name or a bad value (the same message as
                :func:`iterative_decode` and ``tools/generate.py``).
        """
        base = self.edit_decoding if editing else self.decoding
        return base.replace(**dict(overrides or {}))

    @staticmethod
    def _resolve_seeds(seeds: Optional[Union[Sequence[int], torch.Tensor]], num: int) -> torch.Tensor:
        if seeds is None:
            # from torch's global RNG, so runner/inferencer seeding makes runs repeatable
            return torch.randint(0, 2**31 - 1, (num, ), dtype=torch.int64)
        seeds = torch.as_tensor(seeds, dtype=torch.int64).flatten().cpu()
        if len(seeds) != num:
            raise ValueError(f'got {len(seeds)} seeds for {num} images')
        return seeds

    @contextlib.contextmanager
    def _eval_mode(self) -> Iterator[None]:
        # decoding is inference: dropout must be off even if the module is in train mode
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad(), precision_context(self.precision, self.backbone.word_embeddings.device.type):
                yield
        finally:
            self.train(was_training)

    def _logits(self, ids: torch.Tensor) -> torch.Tensor:
        # nothing dropped: MAGEViT's check-free path (same values as an all-False drop mask, compiles to one
        # graph); sampling and confidences in fp32 whatever the precision of the network call
        return self.predict_logits(ids, None, ids == self.mask_id).float()

    # ------------------------------------------------------------ Python API
    def decode_tokens(self, init_ids: torch.Tensor, seeds: Sequence[int], editing: bool = False,
                      record_steps: bool = False, **options):
        """Run :func:`iterative_decode` on ``init_ids`` (B, N) (``mask_id`` = unknown).

        ``options`` override fields of the config's :class:`DecodingOptions`.
        """
        opts = self.decoding_options(options, editing)
        sampler = build_sampler([int(s) for s in seeds], opts.seed_mode)
        with self._eval_mode():
            return iterative_decode(self._logits, init_ids.to(self.backbone.word_embeddings.device),
                                    mask_id=self.mask_id, codebook_size=self.backbone.codebook_size,
                                    sampler=sampler, options=opts, record_steps=record_steps)

    def tokens_to_images(self, token_ids: torch.Tensor) -> torch.Tensor:
        """Token ids (B, N) → RGB images in [0, 1] (B, 3, H, W).

        A written PNG must not depend on the batch size, and convolution
        kernels may change the last bits with it (measured: the tiny VQGAN's
        decoder on CPU). So the first batch of each shape is decoded both
        batched and one image at a time; if the two are bitwise equal the
        batched decode is used for that shape from then on (kernel choice
        depends on shapes, not values), else images stay one at a time.
        """
        with self._eval_mode():
            self._decoder_layout()
            if token_ids.device.type == 'cpu':
                # the decoder's 256² activations are fresh mmaps (above glibc's mmap threshold) that cannot reuse
                # the heap the decoding steps left free; returning that first lowers the fp32 generation peak
                # by ~40 MB (README "Performance", memory) for ~10k page faults, nothing next to the 20 steps
                release_free_heap()

            def one_by_one():
                return torch.cat([self.tokenizer.decode(ids[None], grid=self.token_grid).float() for ids in token_ids])

            if token_ids.shape[0] == 1:
                return one_by_one()
            key = (tuple(token_ids.shape), str(token_ids.device), self.precision, torch.is_autocast_enabled('cpu'))
            cache = self.__dict__.setdefault('_batched_decode_ok', {})
            if cache.get(key) is False:
                return one_by_one()
            batched = self.tokenizer.decode(token_ids, grid=self.token_grid).float()
            if key not in cache:
                single = one_by_one()
                cache[key] = torch.equal(batched, single)
                return single
            return batched

    def _decoder_layout(self) -> None:
        # a low-precision decode runs the VQGAN decoder channels-last: oneDNN's bf16 convolutions (AMX) and
        # cuDNN's fp16/bf16 ones want NHWC (measured 1.7-2x on the official decoder in bf16 on CPU, README
        # "Performance"); the fp32 (faithful) decode keeps the contiguous layout and its exact bits
        channels_last = self.precision != 'fp32'
        if self.__dict__.get('_decoder_channels_last', False) != channels_last:
            fmt = torch.channels_last if channels_last else torch.contiguous_format
            self.tokenizer.decoder.to(memory_format=fmt)
            self._decoder_channels_last = channels_last

    def generate_tokens(self, seeds: Sequence[int], **options) -> torch.Tensor:
        """Unconditional token maps (B, N) for the given per-image seeds."""
        init = torch.full((len(seeds), self.backbone.num_tokens), self.mask_id, dtype=torch.long)
        return self.decode_tokens(init, seeds, **options).token_ids

    def generate(self, seeds: Sequence[int], **options) -> torch.Tensor:
        """Unconditional RGB images in [0, 1] (B, 3, H, W), one per seed."""
        return self.tokens_to_images(self.generate_tokens(seeds, **options))

    def edit(self, images: torch.Tensor, masks: torch.Tensor, seeds: Optional[Sequence[int]] = None,
             dilation: int = 0, paste_back: bool = True, **options) -> EditResult:
        """Inpaint / outpaint / uncrop: regenerate the tokens under ``masks``, keep the others.

        Args:
            images (Tensor): (B, 3, H, W) RGB in [0, 1]. Resized to the model's
                resolution when it differs (and the result resized back).
            masks (Tensor): (B, 1, H, W) or (B, H, W); nonzero = regenerate.
                Every token cell touched by the mask is regenerated.
            seeds (Sequence[int], optional): Per-image seeds. Defaults to draws
                from torch's global RNG.
            dilation (int): Grow the regenerated token region by this many
                cells. Defaults to 0.
            paste_back (bool): Copy the input's pixels outside the mask into
                the result (mmagic's inpainting convention). Defaults to True.
            **options: :class:`DecodingOptions` overrides (``num_iter``, ``choice_temperature``...).

        Returns:
            EditResult: images, raw decoding, token mask and token maps.
        """
        if images.dim() != 4 or images.shape[1] != 3 or not images.is_floating_point():
            raise ValueError(f'images must be float RGB (B, 3, H, W) in [0, 1]; got {tuple(images.shape)} '
                             f'{images.dtype}')
        masks = masks.unsqueeze(1) if masks.dim() == 3 else masks
        if masks.shape[0] != images.shape[0] or masks.shape[-2:] != images.shape[-2:]:
            raise ValueError(f'mask {tuple(masks.shape)} does not match images {tuple(images.shape)}')
        device = self.backbone.word_embeddings.device
        images, masks = images.to(device), masks.to(device)
        size = tuple(images.shape[-2:])
        model_images = images
        if size != self.image_size:
            model_images = F.interpolate(images, size=self.image_size, mode='bicubic', align_corners=False,
                                         antialias=True).clamp(0, 1)
        seeds = self._resolve_seeds(seeds, images.shape[0])
        with self._eval_mode():
            input_ids = self.tokenizer.encode(model_images)
        token_mask = token_mask_from_pixels(masks, self.token_grid, dilation)
        init_ids = input_ids.masked_fill(token_mask, self.mask_id)
        token_ids = self.decode_tokens(init_ids, seeds.tolist(), editing=True, **options).token_ids
        decoded = self.tokens_to_images(token_ids)
        if size != self.image_size:
            decoded = F.interpolate(decoded, size=size, mode='bicubic', align_corners=False).clamp(0, 1)
        result = decoded
        if paste_back:
            hole = (masks != 0).to(decoded.dtype)
            result = images * (1 - hole) + decoded * hole
        return EditResult(result, decoded, token_mask, input_ids, token_ids)

    # ---------------------------------------------------- mmagic interface
    def _normalize(self, images01: torch.Tensor) -> torch.Tensor:
        # [0, 1] RGB → the data preprocessor's normalised space (destruct inverts it)
        pre = self.data_preprocessor
        if getattr(pre, '_enable_normalize', False):
            return (images01 * 255.0 - pre.mean.view(1, -1, 1, 1)) / pre.std.view(1, -1, 1, 1)
        return images01 * 255.0

    def _destruct_rgb(self, images01: torch.Tensor) -> torch.Tensor:
        """RGB [0, 1] → BGR 0–255 through ``data_preprocessor.destruct`` (mmagic's output format)."""
        DataSample = data_sample_cls()
        samples = [DataSample(metainfo=dict(img_output_channel_order='RGB')) for _ in range(images01.shape[0])]
        return self.data_preprocessor.destruct(self._normalize(images01), samples)

    def _images01(self, normalized: torch.Tensor) -> torch.Tensor:
        pre = self.data_preprocessor
        if getattr(pre, '_enable_normalize', False):
            normalized = normalized * pre.std.view(1, -1, 1, 1) + pre.mean.view(1, -1, 1, 1)
        return (normalized / 255.0).clamp(0, 1)

    def forward(self, inputs: Union[dict, torch.Tensor, None] = None, data_samples: Optional[Any] = None,
                mode: Optional[str] = None) -> List[Any]:
        """Sample (dict or seed-tensor inputs) or edit (image-tensor inputs); see the class docstring."""
        if isinstance(inputs, torch.Tensor) and inputs.is_floating_point() and inputs.dim() == 4:
            return self._forward_edit(inputs, data_samples)
        return self._forward_sample(inputs)

    def _forward_sample(self, inputs: Union[dict, torch.Tensor, None]) -> List[Any]:
        inputs, sample_model, sample_kwargs, seeds = parse_sample_inputs(inputs, 'MAGEGenerator')
        num = inputs.get('num_batches')
        if num is None:
            if seeds is None:
                raise ValueError('MAGEGenerator needs num_batches or per-image seeds (noise) to sample')
            num = len(torch.as_tensor(seeds).flatten())
        if int(num) <= 0:
            raise ValueError(f'num_batches must be > 0; got {num}')
        seeds = self._resolve_seeds(seeds, int(num))
        options = {k: v for k, v in sample_kwargs.items() if k != 'show_progress'}
        token_ids = self.generate_tokens(seeds.tolist(), **options)
        fake_img = self._destruct_rgb(self.tokens_to_images(token_ids))

        gen_sample = data_sample_cls()()
        gen_sample.fake_img = fake_img
        gen_sample.noise = seeds.to(fake_img.device)
        gen_sample.latent = token_ids
        gen_sample.sample_kwargs = deepcopy(inputs.get('sample_kwargs') or {})
        gen_sample.sample_model = sample_model
        return gen_sample.split(allow_nonseq_value=True)

    def _forward_edit(self, inputs: torch.Tensor, data_samples: Optional[Any]) -> List[Any]:
        if data_samples is None or 'mask' not in data_samples:
            raise ValueError('editing needs data_samples with a `mask` field (1 = regenerate), as produced by '
                             "mmagic's LoadMask + GetMaskedImage + PackInputs")
        DataSample = data_sample_cls()
        if isinstance(data_samples, list):
            data_samples = DataSample.stack(data_samples)
        masks = data_samples.mask
        masks = masks.unsqueeze(0) if masks.dim() == 3 else masks
        seeds = data_samples.noise if 'noise' in data_samples else None
        result = self.edit(self._images01(inputs), masks, seeds=seeds)
        fake_img = self._destruct_rgb(result.images)
        fake_res = self._destruct_rgb(result.decoded)
        predictions = DataSample(fake_res=fake_res, fake_img=fake_img, pred_img=fake_img,
                                 token_mask=result.token_mask).split()
        outputs = data_samples.split()
        for sample, pred in zip(outputs, predictions):
            sample.output = pred
        return outputs

    def val_step(self, data: dict) -> List[Any]:
        """``data_preprocessor`` then :meth:`forward` (as mmagic's ``BaseGAN``)."""
        data = self.data_preprocessor(data)
        return self(**data)

    def test_step(self, data: dict) -> List[Any]:
        """Same as :meth:`val_step`."""
        data = self.data_preprocessor(data)
        return self(**data)

    def train_step(self, data, optim_wrapper):
        raise NotImplementedError('MAGEGenerator only samples and edits; pretrain MAGE with the mmpretrain '
                                  'configs in configs/mage/ and load that checkpoint here')
