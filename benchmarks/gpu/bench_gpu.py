"""MAGE on one GPU: CUDA parity, pretraining step throughput/memory/MFU, AMP loss checks, generation speed.

    python benchmarks/gpu/bench_gpu.py [--out DIR] [--budget-s 330] [--no-compile]
    python benchmarks/gpu/bench_gpu.py --dry-run --out /tmp/bench   # tiny sizes on CPU (``make test`` runs it)

On a lent card, ``bash benchmarks/gpu/run.sh`` installs the carried wheels (``.whl/``, see
``benchmarks/gpu/README.md``) and runs this script with the parity dump carried in ``.parity/``.

Sections, in this order, each skipped with a note once ``--budget-s`` would be exceeded:

1. ``matmul``: the bf16 matrix-product ceiling of this card, measured here (8192³, random data,
   median of CUDA-event timings); MFU figures are relative to it.
2. ``parity``: the official parity dump on the GPU in fp32 with TF32 off: token ids exact, logits of
   the pretraining call and of one decoding step within 1e-4, loss within 1e-5, decoded images within
   1e-4; and the replayed official decoding trajectory (token ids exact; reported, not gated).
3. ``train``: ViT-B and ViT-L pretraining steps through the real path: ``MAGE.train_step`` with
   mmengine's ``AmpOptimWrapper`` (autocast, dynamic loss scaling, grad-norm clipping at 3.0, AdamW)
   built from the pretraining configs, in fp16 (official recipe) and bf16, per-GPU batch 64/128/256
   (an OOM is recorded and larger batches of that setting skipped): images/s, step time, peak memory,
   TFLOP/s and MFU, with FLOPs counted by ``flops.pretrain_flops`` (tokenizer + encoder + decoder +
   head; see its docstring); MFU is over the bf16 ceiling of section 1 for fp16 rows too (the same dense
   rate on Hopper). Data are random uint8 images already on the GPU (no loader in the timing); AMP rows
   run with PyTorch's default TF32 settings, as training does.
4. ``loss_vs_fp32``: the loss of the fp16/bf16 forward against fp32 (TF32 off) on the same batch,
   weights, masks and masking ratio, dropout off: relative difference; token agreement of the
   tokenizer under autocast.
5. ``stability``: 50 fp16 steps with dynamic loss scaling (peak lr of the recipe, no warm-up, the
   harshest case): every loss finite, parameters finite at the end, skipped steps and final scale.
6. ``generation``: ViT-B, the generation config's decoding (20 steps, choice temperature 6.0, cosine,
   per-image seeds) through ``iterative_decode`` with the generator's network call (see
   :func:`generation_setup` for why not through mmagic's ``MAGEGenerator``) under bf16 autocast, then
   the VQGAN decode of the whole batch at once (``MAGEGenerator.tokens_to_images`` decodes one image
   at a time so that PNGs do not depend on the batch size; that way is timed too, at the first batch):
   images/s and the projected time for 50,000 images, for batch 64 and 256, and at 256 once more with
   the official single random stream (``seed_mode='batch'``) instead of one stream per image.
7. ``extras``: bf16 with the fused half-precision attention (``fp32_attention=False``), with the
   tokenizer encoding under autocast too (``MAGEVQGAN.autocast_encode=True``; by default it encodes in
   fp32 so that token ids do not depend on the precision), and ``torch.compile`` of the transformer
   blocks and the tokenizer encoder (``--no-compile`` skips).

Writes ``bench_gpu.json`` (everything) and ``bench_gpu_table.md`` to ``--out`` (default ``$OUT``,
else ``./work_dirs/bench_gpu``) and prints the table last. ``--dry-run`` runs the same functions on
CPU with tiny sizes (the parity dump's tiny model widths, 64 px images, batches 2 and 4, bf16 only:
mmengine refuses fp16 autocast on CPU, and ``AmpOptimWrapper``'s CUDA-only assertion is lifted for
its construction) with ``time.perf_counter`` instead of CUDA events, so that the script cannot rot
between leases. Model weights are random (seeded); the tokenizer's codebook is re-drawn from encoder
outputs so that tokens are diverse (a random-init codebook maps every patch to one code).
"""
import argparse
import contextlib
import copy
import dataclasses
import datetime
import gc
import glob
import json
import math
import os
import os.path as osp
import platform
import statistics
import sys
import time
import traceback
from typing import Any, Callable, Dict, List, Optional

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(osp.dirname(HERE))
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

import flops as flop_count  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

PRETRAIN_CONFIGS = {
    'vit-b': osp.join(ROOT, 'configs', 'mage', 'mage_vit-base-p16_8xb512-amp-coslr-1600e_in1k-256px.py'),
    'vit-l': osp.join(ROOT, 'configs', 'mage', 'mage_vit-large-p16_8xb512-amp-coslr-1600e_in1k-256px.py'),
}
GENERATION_CONFIG = osp.join(ROOT, 'configs', 'generation', 'mage-gen_vit-base-p16_iter20-temp6-50k_in1k-256px.py')
DEFAULT_DUMP = osp.join(ROOT, '.parity', 'official_tiny_seed0.pt')
DTYPES = {'fp16': 'float16', 'bf16': 'bfloat16'}
# the parity dump's tiny widths (tests/parity_utils.py reads the same from the dump) for --dry-run
TINY = dict(backbone=dict(arch=dict(embed_dims=64, num_layers=2, num_heads=4, feedforward_channels=256)),
            neck=dict(in_channels=64, embed_dims=32, num_layers=2, num_heads=4),
            head=dict(in_channels=32, embed_dims=64), tokenizer=dict(arch='parity-tiny'))
TOLERANCES = dict(logits=1e-4, loss=1e-5, decoded=1e-4)


# ---------------------------------------------------------------- helpers
class Budget:
    """Wall-clock budget of the whole run; sections ask before starting and are skipped with a note."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.start = seconds, time.perf_counter()
        self.skipped: List[str] = []

    def left(self) -> float:
        return self.seconds - (time.perf_counter() - self.start)

    def allows(self, what: str, need_s: float) -> bool:
        if self.left() >= need_s:
            return True
        self.skipped.append(f'{what}: skipped, {self.left():.0f} s of the budget left (needs ~{need_s:.0f} s)')
        print(f'[bench] {self.skipped[-1]}', flush=True)
        return False


class Timer:
    """Median of repetitions after warm-up: CUDA events on a GPU, ``perf_counter`` on CPU."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == 'cuda'

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def measure(self, fn: Callable[[], Any], warmup: int, reps: int) -> List[float]:
        for _ in range(warmup):
            fn()
        self.sync()
        times = []
        for _ in range(reps):
            if self.cuda:
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                fn()
                end.record()
                end.synchronize()
                times.append(start.elapsed_time(end) / 1e3)
            else:
                t = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t)
        return times


@contextlib.contextmanager
def exact_fp32():
    """No TF32 in matmuls or cuDNN convolutions (PyTorch enables TF32 convolutions by default)."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def is_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.cuda.OutOfMemoryError) or 'out of memory' in str(exc).lower()


def free_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == 'cuda':
        torch.cuda.empty_cache()


def peak_gib(device: torch.device) -> Optional[float]:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == 'cuda' else None


def reset_peak(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)


def find_parity_utils() -> str:
    """tests/parity_utils.py (or wherever the tests tree keeps it): the builders the parity tests use."""
    hits = sorted(glob.glob(osp.join(ROOT, 'tests', '**', 'parity_utils.py'), recursive=True), key=len)
    if not hits:
        raise FileNotFoundError(f'no parity_utils.py under {osp.join(ROOT, "tests")}')
    return hits[0]


def versions() -> Dict[str, Any]:
    import importlib.metadata as md
    out: Dict[str, Any] = dict(python=platform.python_version(), torch=torch.__version__,
                               cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version())
    for dist in ('numpy', 'mmengine', 'mmcv', 'mmpretrain', 'transformers'):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = None
    if out['mmcv'] is None:
        with contextlib.suppress(md.PackageNotFoundError):
            out['mmcv'] = md.version('mmcv-lite') + ' (mmcv-lite: no compiled ops)'
    return out


# ---------------------------------------------------------------- models
def model_config(arch: str, dry_run: bool, fp32_attention: bool = True, tokenizer_autocast: Optional[bool] = None):
    """The pretraining config (model + optim_wrapper) of ``arch``, random tokenizer, tiny widths in dry runs.

    ``tokenizer_autocast`` sets ``MAGEVQGAN.autocast_encode`` (None: the config's; by default the tokenizer
    encodes in fp32 under AMP so that token ids do not depend on the precision).
    """
    from mmengine.config import Config
    cfg = Config.fromfile(PRETRAIN_CONFIGS[arch])
    flop_count.tokenizer_config(cfg.model).init_cfg = None  # random weights: a timing run needs no checkpoint
    if dry_run:
        shrink(cfg.model)
    cfg.model.backbone.fp32_attention = fp32_attention
    cfg.model.neck.fp32_attention = fp32_attention
    if tokenizer_autocast is not None:
        flop_count.tokenizer_config(cfg.model).autocast_encode = tokenizer_autocast
    return cfg


def tokenizer_autocast_supported() -> bool:
    import inspect

    from mage_mm.models.tokenizers import MAGEVQGAN
    return 'autocast_encode' in inspect.signature(MAGEVQGAN).parameters


def shrink(model_cfg) -> None:
    """Dry runs: the tiny widths (values replace the config's, whatever their type there)."""
    for part, values in TINY.items():
        target = flop_count.tokenizer_config(model_cfg) if part == 'tokenizer' else model_cfg[part]
        for key, value in values.items():
            target[key] = copy.deepcopy(value)


def tokenizer_of(model: torch.nn.Module) -> torch.nn.Module:
    """The frozen VQGAN of a MAGE model or generator (``target_generator`` or ``backbone.tokenizer``)."""
    tok = getattr(model, 'target_generator', None)
    return tok if tok is not None else model.backbone.tokenizer


def spread_codebook(tokenizer: torch.nn.Module, images01: torch.Tensor) -> int:
    """Codebook := encoder outputs of ``images01`` at random positions (+ 1 % noise); returns distinct codes."""
    with torch.no_grad(), exact_fp32():
        z = tokenizer.encode_latent(images01)
        flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
        k = tokenizer.num_codes
        if flat.shape[0] < k:
            raise ValueError(f'need at least {k} latent vectors to spread the codebook, got {flat.shape[0]}')
        gen = torch.Generator(device='cpu').manual_seed(0)
        idx = torch.randperm(flat.shape[0], generator=gen)[:k].to(flat.device)
        noise = torch.randn(k, flat.shape[1], generator=gen).to(flat.device)
        tokenizer.quantize.embedding.weight.copy_(flat[idx] + 0.01 * flat.std() * noise)
        return int(tokenizer.encode(images01).unique().numel())


def random_images(batch: int, size: int, device: torch.device, seed: int) -> torch.Tensor:
    gen = torch.Generator(device='cpu').manual_seed(seed)
    return torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, generator=gen).to(device)


def build_pretrain(cfg, device: torch.device, image_size: int):
    from mmpretrain.registry import MODELS
    torch.manual_seed(0)
    np.random.seed(0)
    try:
        with torch.device(device):  # parameters made and initialised on the GPU: seconds instead of tens
            model = MODELS.build(copy.deepcopy(cfg.model))
            model.init_weights()
    except Exception:  # noqa: BLE001  some constructor needs host tensors: build on the CPU, then move
        torch.manual_seed(0)
        np.random.seed(0)
        model = MODELS.build(copy.deepcopy(cfg.model))
        model.init_weights()
    model.to(device)
    codes = spread_codebook(tokenizer_of(model), random_images(8, image_size, device, 99).float() / 255)
    return model, codes


@contextlib.contextmanager
def amp_wrapper_on_cpu(device: torch.device):
    """Dry runs only: ``AmpOptimWrapper`` asserts a CUDA device at construction; lift just that assertion."""
    if device.type == 'cuda':
        yield
        return
    from mmengine.optim.optimizer import amp_optimizer_wrapper as amp
    saved = amp.is_cuda_available
    amp.is_cuda_available = lambda: True
    try:
        yield
    finally:
        amp.is_cuda_available = saved


def build_optim(cfg, model: torch.nn.Module, precision: str, device: torch.device):
    """The config's optim wrapper (AmpOptimWrapper, dynamic loss scale, clip 3.0, AdamW) in ``precision``."""
    from mmengine.optim import build_optim_wrapper
    ow = copy.deepcopy(cfg.optim_wrapper)
    if precision == 'fp32':
        ow = dict(type='OptimWrapper', optimizer=ow.optimizer, clip_grad=ow.get('clip_grad'),
                  paramwise_cfg=ow.get('paramwise_cfg'))
    else:
        ow.type = 'AmpOptimWrapper'
        ow.dtype = DTYPES[precision]
    with amp_wrapper_on_cpu(device):
        return build_optim_wrapper(model, ow)


def batch_data(images: torch.Tensor) -> dict:
    # the collated form of the MAGE pipeline: one view per image, no labels
    return dict(inputs=[images], data_samples=None)


# ---------------------------------------------------------------- sections
def bench_matmul(device: torch.device, timer: Timer, dry_run: bool) -> dict:
    n = 256 if dry_run else 8192
    dtype = torch.float32 if device.type == 'cpu' else torch.bfloat16
    gen = torch.Generator(device='cpu').manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(device, dtype)
    b = torch.randn(n, n, generator=gen).to(device, dtype)
    times = timer.measure(lambda: a @ b, warmup=2 if dry_run else 5, reps=3 if dry_run else 20)
    t = statistics.median(times)
    return dict(n=n, dtype=str(dtype).replace('torch.', ''), median_s=t, tflops=2 * n**3 / t / 1e12)


def max_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double().cpu() - b.double().cpu()).abs().max())


def bench_parity(dump_path: str, device: torch.device) -> dict:
    """The parity dump's checks on ``device`` in fp32 (TF32 off); builders from tests/parity_utils.py."""
    import importlib.util

    from mage_mm.utils.checkpoint import safe_load
    spec = importlib.util.spec_from_file_location('mage_mm_parity_utils', find_parity_utils())
    pu = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pu)
    dump = safe_load(dump_path)
    out: Dict[str, Any] = dict(dump=osp.basename(dump_path))
    with torch.no_grad(), exact_fp32():
        tok = pu.build_tokenizer(dump).to(device)
        images = dump['images'].to(device)
        ids = tok.encode(images)
        out['token_ids_exact'] = bool(torch.equal(ids.cpu(), dump['vqgan']['token_ids']))
        out['token_ids_mismatches'] = int((ids.cpu() != dump['vqgan']['token_ids']).sum())
        decoded = tok.decode(dump['vqgan']['token_ids'].to(device), clamp=False)
        out['decoded_max_abs_err'] = max_err(decoded, dump['vqgan']['decoded_from_ids'])

        model = pu.build_mage(dump).to(device)
        ref = dump['mage_train']
        gt = ref['gt_token_ids'].to(device)
        drop, all_ = ref['token_drop_mask'].bool().to(device), ref['token_all_mask'].bool().to(device)
        out['pretrain_ids_exact'] = bool(torch.equal(model.tokenize(images).cpu(), ref['gt_token_ids']))
        logits = model.predict_logits(gt, drop, all_)
        out['pretrain_logits_max_abs_err'] = max_err(logits, ref['logits'])
        bb = model.backbone
        enc = bb(gt, mask=(drop, all_))
        feats = model.neck(enc.latent, enc.token_drop_mask, enc.token_all_mask)
        loss = model.head.loss(feats, gt, enc.token_all_mask, bb.word_embeddings)
        out['loss_abs_err'] = abs(float(loss) - float(ref['loss']))

        gen_ref = dump['mage_generation_step']
        gen_all = gen_ref['token_all_mask'].bool().to(device)
        gen_logits = model.predict_logits(gen_ref['input_ids'][:, 1:].to(device), torch.zeros_like(gen_all), gen_all)
        out['generation_step_logits_max_abs_err'] = max_err(gen_logits, gen_ref['logits'])
        out['decode_replay_exact'] = decode_replay(model, dump, device)
    out['passed'] = bool(out['token_ids_exact'] and out['pretrain_ids_exact']
                         and out['pretrain_logits_max_abs_err'] <= TOLERANCES['logits']
                         and out['generation_step_logits_max_abs_err'] <= TOLERANCES['logits']
                         and out['loss_abs_err'] <= TOLERANCES['loss']
                         and out['decoded_max_abs_err'] <= TOLERANCES['decoded'])
    out['tolerances'] = dict(TOLERANCES)
    return out


def decode_replay(model, dump: dict, device: torch.device) -> Optional[bool]:
    """The official decoding trajectory with its recorded draws (reported; near-ties may flip on a GPU)."""
    from mage_mm.models.generators import DecodingOptions, ReplaySampler, iterative_decode
    loop = dump.get('generation_loop')
    if loop is None:
        return None
    bb = model.backbone

    init = torch.full_like(loop['final_token_ids'], bb.mask_id).to(device)
    sampler = ReplaySampler(loop['step_categorical_samples'], loop['step_gumbel_draws'])
    options = DecodingOptions(num_iter=int(loop['num_iter']), choice_temperature=float(loop['choice_temperature']))
    result = iterative_decode(generation_logits(model), init, mask_id=bb.mask_id, codebook_size=bb.codebook_size,
                              sampler=sampler, options=options)
    return bool(torch.equal(result.token_ids.cpu(), loop['final_token_ids']))


def bench_train(arch: str, precision: str, batches: List[int], args, device: torch.device, timer: Timer,
                peak_tflops: Optional[float], budget: Budget, fp32_attention: bool = True,
                compile_backend: Optional[str] = None, tokenizer_autocast: Optional[bool] = None) -> List[dict]:
    """Training-step rows for one (arch, precision): one model and optimizer, batches in increasing order."""
    cfg = model_config(arch, args.dry_run, fp32_attention, tokenizer_autocast)
    per_image = flop_count.pretrain_flops(cfg.model, args.image_size)
    model, codes = build_pretrain(cfg, device, args.image_size)
    if compile_backend:
        compile_blocks(model, compile_backend)
    model.train()
    optim = build_optim(cfg, model, precision, device)
    tok_amp = bool(getattr(tokenizer_of(model), 'autocast_encode', True))
    rows = []
    for i, batch in enumerate(batches):
        row: Dict[str, Any] = dict(arch=arch, precision=precision, batch=batch, fp32_attention=fp32_attention,
                                   compile=compile_backend, tokenizer_autocast=tok_amp, distinct_codes_at_setup=codes)
        if not budget.allows(f'train {arch} {precision} b{batch}', args.train_item_s):
            row['status'] = 'skipped (budget)'
            rows.append(row)
            continue
        data = batch_data(random_images(batch, args.image_size, device, seed=i))
        failure = None
        try:
            reset_peak(device)
            t0 = time.perf_counter()
            model.train_step(data, optim)  # first step: allocations, cuDNN/autotune, compile
            timer.sync()
            row['first_step_s'] = time.perf_counter() - t0
            times = timer.measure(lambda: model.train_step(data, optim), args.warmup, args.reps)
        except Exception as exc:  # noqa: BLE001  an OOM is a result; anything else is recorded too
            failure = 'OOM' if is_oom(exc) else f'error: {type(exc).__name__}: {exc}'
        if failure is not None:
            # outside the except block, so that the traceback's frames no longer hold the activations
            optim.zero_grad()
            row['status'] = failure
            rows.append(row)
            data = None
            free_memory(device)
            if failure == 'OOM':
                for later in batches[i + 1:]:
                    rows.append(dict(arch=arch, precision=precision, batch=later, fp32_attention=fp32_attention,
                                     compile=compile_backend, tokenizer_autocast=tok_amp,
                                     status='skipped (smaller batch OOM)'))
                break
            continue
        t = statistics.median(times)
        step_flops = per_image['total'] * batch
        row.update(status='ok', step_s=t, step_s_spread=[min(times), max(times)], images_per_s=batch / t,
                   peak_gib=peak_gib(device), flops_per_image=per_image['total'], tflops=step_flops / t / 1e12)
        if peak_tflops:
            row['mfu'] = row['tflops'] / peak_tflops
        if precision == 'fp16' and hasattr(optim, 'loss_scaler'):
            row['loss_scale'] = float(optim.loss_scaler.get_scale())
        rows.append(row)
        print(f'[bench] train {arch} {precision} b{batch}: {row["images_per_s"]:.1f} img/s, '
              f'{t * 1e3:.1f} ms, peak {row["peak_gib"]} GiB, MFU {row.get("mfu")}', flush=True)
    return rows  # the model and optimizer go with this frame; section() frees the cached memory


def compile_blocks(model: torch.nn.Module, backend: str) -> None:
    """``torch.compile`` the static-shape parts: transformer blocks and the tokenizer encoder."""
    for block in list(model.backbone.blocks) + list(model.neck.decoder_blocks):
        block.compile(backend=backend)
    tokenizer_of(model).encoder.compile(backend=backend)


def loss_at(model, data: dict, ctx, seed: int, masks):
    """Loss of one forward (seeded masking, dropout off), token ids, and logits with the given masks."""
    with torch.no_grad():
        batch = model.data_preprocessor(data, True)
        with ctx:
            ids = model.tokenize(batch['inputs'][0])
            np.random.seed(seed)
            torch.manual_seed(seed)
            loss = model(**batch, mode='loss')['loss']
            logits = model.predict_logits(masks[2], masks[0], masks[1]).float()
    return float(loss), ids, logits


def bench_loss_vs_fp32(arch: str, precisions: List[str], batch: int, args, device: torch.device) -> List[dict]:
    cfg = model_config(arch, args.dry_run)
    model, codes = build_pretrain(cfg, device, args.image_size)
    model.eval()  # dropout off: the two runs must see the same network
    data = batch_data(random_images(batch, args.image_size, device, seed=1234))
    with torch.no_grad(), exact_fp32():
        # one fixed masking for the logits comparison: the reference tokens, the official counts
        ids0 = model.tokenize(model.data_preprocessor(data, True)['inputs'][0])
        torch.manual_seed(0)
        np.random.seed(0)
        drop, all_ = model.backbone.sample_masks(ids0.shape[0], ids0.shape[1], device=ids0.device)
        masks = (drop, all_, ids0)
        ref_loss, ref_ids, ref_logits = loss_at(model, data, contextlib.nullcontext(), 0, masks)
    rows = []
    for precision in precisions:
        optim = build_optim(cfg, model, precision, device)
        loss, ids, logits = loss_at(model, data, optim.optim_context(model), 0, masks)
        rows.append(dict(arch=arch, precision=precision, batch=batch, fp32_loss=ref_loss, amp_loss=loss,
                         rel_diff=abs(loss - ref_loss) / abs(ref_loss),
                         logits_rel_diff=float((logits - ref_logits).norm() / ref_logits.norm()),
                         token_agreement=float((ids == ref_ids).float().mean()), distinct_codes=codes))
        del optim
    del model
    free_memory(device)
    return rows


def bench_stability(arch: str, precision: str, batch: int, steps: int, args, device: torch.device) -> dict:
    cfg = model_config(arch, args.dry_run)
    model, _ = build_pretrain(cfg, device, args.image_size)
    model.train()
    optim = build_optim(cfg, model, precision, device)
    batches = [batch_data(random_images(batch, args.image_size, device, seed=100 + i)) for i in range(4)]
    scaler = getattr(optim, 'loss_scaler', None)
    enabled = scaler is not None and scaler.is_enabled()
    losses, skipped, error = [], 0, None
    for step in range(steps):
        before = float(scaler.get_scale()) if enabled else None
        try:
            log = model.train_step(batches[step % len(batches)], optim)
        except FloatingPointError as exc:  # MAGE.loss refuses a non-finite loss
            error = str(exc)
            break
        losses.append(float(log['loss']))
        if enabled and float(scaler.get_scale()) < before:
            skipped += 1  # the scaler found inf/NaN gradients and skipped this update
    params_finite = all(bool(torch.isfinite(p).all()) for p in model.parameters())
    out = dict(arch=arch, precision=precision, batch=batch, steps=len(losses), requested_steps=steps,
               all_losses_finite=bool(losses) and all(math.isfinite(v) for v in losses), params_finite=params_finite,
               first_loss=losses[0] if losses else None, last_loss=losses[-1] if losses else None,
               skipped_steps=skipped if enabled else None,
               final_loss_scale=float(scaler.get_scale()) if enabled else None, error=error,
               lr=float(optim.param_groups[0]['lr']))
    out['passed'] = bool(out['all_losses_finite'] and params_finite and error is None and len(losses) == steps)
    del model, optim, batches
    free_memory(device)
    return out


def generation_logits(model) -> Callable[[torch.Tensor], torch.Tensor]:
    """One decoding step's network call, as ``MAGEGenerator._logits``: nothing dropped, [MASK] = unknown."""
    mask_id = model.backbone.mask_id

    def logits_fn(ids: torch.Tensor) -> torch.Tensor:
        all_mask = torch.cat([torch.zeros_like(ids[:, :1], dtype=torch.bool), ids == mask_id], dim=1)
        # sampling and confidences in fp32 whatever the precision of the network call (as the generator)
        return model.predict_logits(ids, torch.zeros_like(all_mask), all_mask).float()

    return logits_fn


def generation_setup(args, device: torch.device):
    """ViT-B MAGE (the generation config's model parts) and the config's decoding options.

    ``MAGEGenerator`` (mmagic) is not built here: building anything from mmagic's registry imports
    ``mmagic.models``, whose editors import ``mmcv.ops`` (compiled ops) and diffusers, which the ops-free
    mmcv of the lent machine does not have. The network call (``MAGEGenerator.predict_logits`` is
    ``MAGE.predict_logits``) and the loop (:func:`iterative_decode`, :func:`build_sampler`) are the
    generator's own; ``tests/test_tools/test_bench_gpu.py`` checks that this path gives the generator's
    token maps exactly.
    """
    from mmengine.config import Config

    from mage_mm.models.generators import DecodingOptions
    # its custom_imports load mmagic (generator, FID metric): not needed for the decoding math
    gen_cfg = Config.fromfile(GENERATION_CONFIG, import_custom_modules=False)
    options = DecodingOptions(**{k: gen_cfg.model[k] for k in DecodingOptions.__dataclass_fields__
                                 if k in gen_cfg.model})
    cfg = model_config('vit-b', args.dry_run)
    model, _ = build_pretrain(cfg, device, args.image_size)
    return cfg, model.eval(), options


def generate_tokens(model, seeds: List[int], options) -> torch.Tensor:
    """Unconditional token maps (B, N), as ``MAGEGenerator.generate_tokens(seeds)``."""
    from mage_mm.models.generators import build_sampler, iterative_decode
    bb = model.backbone
    init = torch.full((len(seeds), bb.num_tokens), bb.mask_id, dtype=torch.long, device=bb.word_embeddings.device)
    with torch.no_grad():
        return iterative_decode(generation_logits(model), init, mask_id=bb.mask_id, codebook_size=bb.codebook_size,
                                sampler=build_sampler(seeds, options.seed_mode), options=options).token_ids


def bench_generation(batches: List[int], args, device: torch.device, timer: Timer, peak_tflops: Optional[float],
                     budget: Budget) -> List[dict]:
    cfg, model, options = generation_setup(args, device)
    tok = tokenizer_of(model)
    per_image = flop_count.generation_flops(cfg.model, args.image_size, options.num_iter)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16)
    rows = []
    # the config's per-image seeds (one random stream per image), then the official single-stream order at the
    # largest batch: what per-image reproducibility costs in sampling launches
    plan = [(b, options) for b in batches] + [(batches[-1], dataclasses.replace(options, seed_mode='batch'))]
    for batch, opts in plan:
        row: Dict[str, Any] = dict(batch=batch, precision='bf16', num_iter=opts.num_iter,
                                   choice_temperature=opts.choice_temperature, seed_mode=opts.seed_mode)
        if not budget.allows(f'generation b{batch} {opts.seed_mode}', args.gen_item_s):
            row['status'] = 'skipped (budget)'
            rows.append(row)
            continue
        seeds = list(range(batch))
        holder: Dict[str, torch.Tensor] = {}

        def tokens():
            with autocast:
                holder['ids'] = generate_tokens(model, seeds, opts)

        def decode():
            with torch.no_grad(), autocast:
                holder['images'] = tok.decode(holder['ids'], grid=model.backbone.token_grid)

        failure = None
        try:
            reset_peak(device)
            t_tok = statistics.median(timer.measure(tokens, 1, args.gen_reps))
            t_dec = statistics.median(timer.measure(decode, 1, args.gen_reps))
        except Exception as exc:  # noqa: BLE001
            failure = 'OOM' if is_oom(exc) else f'error: {type(exc).__name__}: {exc}'
        if failure is not None:
            row['status'] = failure
            rows.append(row)
            holder.clear()
            free_memory(device)
            continue
        total = t_tok + t_dec
        images = holder['images']
        row.update(status='ok', tokens_s=t_tok, batched_decode_s=t_dec, total_s=total, images_per_s=batch / total,
                   projected_50k_s=50000 * total / batch, peak_gib=peak_gib(device),
                   images_finite=bool(torch.isfinite(images).all()), image_shape=list(images.shape),
                   flops_per_image=per_image['total'], tflops=per_image['total'] * batch / total / 1e12)
        if peak_tflops:
            row['mfu'] = row['tflops'] / peak_tflops
        if len(rows) == 0 and budget.allows('per-image VQGAN decode', args.gen_item_s / 2):
            # MAGEGenerator.tokens_to_images decodes one image at a time: timed the same way, for comparison
            def per_image_decode():
                with torch.no_grad(), autocast:
                    torch.cat([tok.decode(ids[None], grid=model.backbone.token_grid) for ids in holder['ids']])
            row['per_image_decode_s'] = statistics.median(timer.measure(per_image_decode, 1, 1))
        rows.append(row)
        print(f'[bench] generation b{batch}: {row["images_per_s"]:.1f} img/s, 50k in '
              f'{row["projected_50k_s"]:.0f} s', flush=True)
    return rows  # section() frees the memory


# ---------------------------------------------------------------- report
def fmt(v: Any, spec: str = '.1f') -> str:
    if v is None:
        return '-'
    if isinstance(v, float):
        return format(v, spec)
    return str(v)


def table(res: dict) -> str:
    env = res['env']
    dry = ' (DRY RUN, CPU)' if res['dry_run'] else ''
    lines = [f"# MAGE GPU benchmark — {env['device_name']} — {res['date']}{dry}",
             '', 'versions: ' + ', '.join(f'{k} {v}' for k, v in env['versions'].items()), '']
    mm = res.get('matmul')
    if mm:
        lines.append(f"matmul ceiling ({mm['dtype']}, {mm['n']}³): {mm['tflops']:.1f} TFLOP/s")
    par = res.get('parity')
    if par and 'passed' in par:
        lines.append(f"parity (fp32, TF32 off): {'PASS' if par['passed'] else 'FAIL'} — ids exact "
                     f"{par['token_ids_exact']}, logits err {par['pretrain_logits_max_abs_err']:.2e} / "
                     f"{par['generation_step_logits_max_abs_err']:.2e}, loss err {par['loss_abs_err']:.2e}, "
                     f"decoded err {par['decoded_max_abs_err']:.2e}, decode replay exact {par['decode_replay_exact']}")
    elif par:
        lines.append(f"parity: {par.get('error', par)}")
    lines += ['', '| train | prec | batch | img/s | step ms | peak GiB | TFLOP/s | MFU | status |',
              '|---|---|---:|---:|---:|---:|---:|---:|---|']
    for r in res.get('train', []):
        name = (r['arch'] + ('' if r.get('fp32_attention', True) else ' half-attn')
                + (f" compile({r['compile']})" if r.get('compile') else '')
                + (' tok-amp' if r.get('tokenizer_autocast') else ''))
        lines.append(f"| {name} | {r['precision']} | {r['batch']} | {fmt(r.get('images_per_s'))} | "
                     f"{fmt(r['step_s'] * 1e3 if 'step_s' in r else None)} | {fmt(r.get('peak_gib'), '.2f')} | "
                     f"{fmt(r.get('tflops'))} | {fmt(r['mfu'] * 100 if 'mfu' in r else None)}"
                     f"{'%' if 'mfu' in r else ''} | {r['status']} |")
    if res.get('loss_vs_fp32'):
        lines += ['', '| vs fp32 | prec | batch | fp32 loss | amp loss | loss rel diff | logits rel diff | '
                  'token agreement |', '|---|---|---:|---:|---:|---:|---:|---:|']
        for r in res['loss_vs_fp32']:
            lines.append(f"| {r['arch']} | {r['precision']} | {r['batch']} | {r['fp32_loss']:.5f} | "
                         f"{r['amp_loss']:.5f} | {r['rel_diff']:.2e} | {r['logits_rel_diff']:.2e} | "
                         f"{r['token_agreement']:.4f} |")
    if res.get('stability'):
        lines += ['', '| stability | prec | batch | steps | finite | skipped | final scale | loss first→last |',
                  '|---|---|---:|---:|---|---:|---:|---|']
        for r in res['stability']:
            lines.append(f"| {r['arch']} | {r['precision']} | {r['batch']} | {r['steps']} | "
                         f"{'yes' if r['passed'] else 'NO'} | {fmt(r['skipped_steps'])} | "
                         f"{fmt(r['final_loss_scale'], '.0f')} | {fmt(r['first_loss'], '.3f')}→"
                         f"{fmt(r['last_loss'], '.3f')} |")
    if res.get('generation'):
        lines += ['', '| generation ViT-B | batch | img/s | tokens s | batched decode s | per-image decode s | '
                  '50k images | MFU | status |', '|---|---:|---:|---:|---:|---:|---:|---:|---|']
        for r in res['generation']:
            proj = r.get('projected_50k_s')
            lines.append(f"| {r['precision']} {r['num_iter']} steps, seeds {r['seed_mode']} | {r['batch']} | "
                         f"{fmt(r.get('images_per_s'))} | "
                         f"{fmt(r.get('tokens_s'), '.3f')} | {fmt(r.get('batched_decode_s'), '.3f')} | "
                         f"{fmt(r.get('per_image_decode_s'), '.3f')} | "
                         f"{fmt(proj / 60 if proj is not None else None)}{' min' if proj is not None else ''} | "
                         f"{fmt(r['mfu'] * 100 if 'mfu' in r else None)}{'%' if 'mfu' in r else ''} | "
                         f"{r['status']} |")
    notes = res.get('skipped', []) + [f"{k}: {v.splitlines()[0]}" for k, v in res.get('errors', {}).items()]
    if notes:
        lines += ['', 'notes:'] + [f'- {n}' for n in notes]
    lines.append(f"\ntotal wall time {res['wall_s']:.0f} s (budget {res['budget_s']:.0f} s)")
    return '\n'.join(lines)


def write_outputs(res: dict, out_dir: str) -> str:
    os.makedirs(out_dir, exist_ok=True)
    text = table(res)
    for name, content in (('bench_gpu.json', json.dumps(res, indent=1, default=str)), ('bench_gpu_table.md', text)):
        tmp = osp.join(out_dir, f'.{name}.tmp')
        with open(tmp, 'w') as f:
            f.write(content + '\n')
        os.replace(tmp, osp.join(out_dir, name))
    return text


# ---------------------------------------------------------------- main
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--dry-run', action='store_true', help='tiny sizes on CPU (the test suite runs this)')
    p.add_argument('--out', default=os.environ.get('OUT') or osp.join(ROOT, 'work_dirs', 'bench_gpu'))
    p.add_argument('--budget-s', type=float, default=330.0, help='hard wall-clock budget of the whole run')
    p.add_argument('--parity-dump', default=os.environ.get('MAGE_PARITY_DUMP', DEFAULT_DUMP))
    p.add_argument('--archs', default='vit-b,vit-l')
    p.add_argument('--batches', default=None, help='comma list (default 64,128,256; dry run 2,4)')
    p.add_argument('--gen-batches', default=None, help='comma list (default 64,256; dry run 2,4)')
    p.add_argument('--stability-steps', type=int, default=None, help='default 50 (dry run 3)')
    p.add_argument('--no-compile', action='store_true', help='skip the torch.compile variant')
    p.add_argument('--compile-backend', default=None, help='default inductor (dry run: eager, to stay fast)')
    args = p.parse_args(argv)
    dry = args.dry_run
    args.image_size = 64 if dry else 256
    args.batches = [int(b) for b in (args.batches or ('2,4' if dry else '64,128,256')).split(',')]
    args.gen_batches = [int(b) for b in (args.gen_batches or ('2,4' if dry else '64,256')).split(',')]
    args.stability_steps = args.stability_steps or (3 if dry else 50)
    args.compile_backend = args.compile_backend or ('eager' if dry else 'inductor')
    args.archs = args.archs.split(',')
    args.warmup, args.reps, args.gen_reps = (1, 2, 1) if dry else (3, 10, 3)
    # rough seconds one item needs (budget checks): a train batch, a generation batch, a compile run
    args.train_item_s, args.gen_item_s, args.compile_s = (1, 1, 5) if dry else (25, 40, 150)
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    budget = Budget(args.budget_s)
    if args.dry_run:
        device = torch.device('cpu')
    elif not torch.cuda.is_available():
        raise SystemExit('no CUDA device: run with --dry-run on CPU')
    else:
        device = torch.device('cuda')
    from mmengine.registry import DefaultScope

    import mage_mm.compat  # noqa: F401  version-gated shims, as mage_mm's tools apply them
    import mage_mm.register  # noqa: F401  the MAGE components in mmpretrain's registries

    timer = Timer(device)
    precisions = ['bf16'] if args.dry_run else ['fp16', 'bf16']
    res: Dict[str, Any] = dict(
        date=datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'), dry_run=args.dry_run,
        budget_s=args.budget_s, complete=False, image_size=args.image_size,
        timing='cuda events' if device.type == 'cuda' else 'perf_counter', warmup=args.warmup, reps=args.reps,
        errors={}, train=[], loss_vs_fp32=[], stability=[], generation=[],
        env=dict(device_name=torch.cuda.get_device_name(device) if device.type == 'cuda' else platform.processor()
                 or 'cpu', versions=versions(), hostname=platform.node()),
        flops_per_image={arch: dict(pretrain=flop_count.pretrain_flops(model_config(arch, args.dry_run).model,
                                                                       args.image_size)) for arch in args.archs})
    if device.type == 'cuda':
        res['env']['memory_gib'] = torch.cuda.get_device_properties(device).total_memory / 2**30
    if args.dry_run:
        # the real-size counts too, so that the configs and the counter are exercised without building
        res['flops_per_image_full_size'] = {arch: flop_count.pretrain_flops(model_config(arch, False).model, 256)
                                            for arch in args.archs}
        res['dtype_note'] = 'CPU: bf16 only (mmengine refuses fp16 autocast on CPU); fp16 runs on the GPU'

    def section(name: str, fn: Callable[[], Any], need_s: float = 0.0) -> Any:
        if not budget.allows(name, need_s):
            return None
        t = time.perf_counter()
        try:
            value = fn()
        except Exception:  # noqa: BLE001  one broken section must not cost the others
            res['errors'][name] = traceback.format_exc()
            print(f'[bench] {name} FAILED:\n{res["errors"][name]}', flush=True)
            value = None
        print(f'[bench] {name}: {time.perf_counter() - t:.1f} s', flush=True)
        free_memory(device)
        # partial results on disk after every section: a run killed at the device's limit keeps them
        res['skipped'], res['wall_s'] = budget.skipped, time.perf_counter() - budget.start
        with contextlib.suppress(Exception):
            write_outputs(res, args.out)
        return value

    with DefaultScope.overwrite_default_scope('mmpretrain'):
        res['matmul'] = section('matmul', lambda: bench_matmul(device, timer, args.dry_run))
        peak = res['matmul']['tflops'] if res['matmul'] else None
        if osp.isfile(args.parity_dump):
            res['parity'] = section('parity', lambda: bench_parity(args.parity_dump, device), 10)
        else:
            res['parity'] = dict(error=f'parity dump not found at {args.parity_dump} (copy '
                                 '../shared/parity/*.pt into .parity/ and carry it)')
        for arch in args.archs:
            for precision in precisions:
                rows = section(f'train {arch} {precision}', lambda: bench_train(
                    arch, precision, args.batches, args, device, timer, peak, budget), args.train_item_s)
                res['train'] += rows or []
            res['loss_vs_fp32'] += section(f'loss_vs_fp32 {arch}', lambda: bench_loss_vs_fp32(
                arch, precisions, args.batches[0], args, device), args.train_item_s) or []
            stab = section(f'stability {arch}', lambda: bench_stability(
                arch, precisions[0], args.batches[0], args.stability_steps, args, device), args.train_item_s)
            if stab:
                res['stability'].append(stab)
            if arch == args.archs[0]:
                # generation right after the first arch: its figures matter more than the larger model's
                res['generation'] = section('generation', lambda: bench_generation(
                    args.gen_batches, args, device, timer, peak, budget), args.gen_item_s) or []
        arch0, big = args.archs[0], args.batches[-1]
        res['train'] += section('extra: bf16 half-precision attention', lambda: bench_train(
            arch0, 'bf16', [big], args, device, timer, peak, budget, fp32_attention=False), args.train_item_s) or []
        if tokenizer_autocast_supported():
            res['train'] += section('extra: tokenizer under autocast', lambda: bench_train(
                arch0, 'bf16', [big], args, device, timer, peak, budget, tokenizer_autocast=True),
                args.train_item_s) or []
        if not args.no_compile:
            res['train'] += section(f'extra: torch.compile({args.compile_backend})', lambda: bench_train(
                arch0, 'bf16', [args.batches[min(1, len(args.batches) - 1)]], args, device, timer, peak, budget,
                compile_backend=args.compile_backend), args.compile_s) or []
    res['skipped'] = budget.skipped
    res['wall_s'] = time.perf_counter() - budget.start
    res['complete'] = True
    text = write_outputs(res, args.out)
    print(text, flush=True)
    return res


if __name__ == '__main__':
    main()
