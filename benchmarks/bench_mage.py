"""mage_mm workloads in fp32 (our faithful default) and with each fast path, one fresh process per measurement.

    python benchmarks/bench_mage.py --json FILE [--quick | --smoke] [--workloads a,b] [--variants fp32,bf16]

Workloads (random weights; the timings do not depend on the values):

* ``vqgan_encode``     official VQGAN (f16, 1024 codes) images → ids, 4 × 256² (the class built as
  ``mage_mm.apis.load_tokenizer`` builds it: no registry, so mmpretrain's model zoo is not imported)
* ``vit_b_train_step`` ViT-B MAGE pretraining step, batch 4 at 256² (data preprocessor, tokenizing, masked
  forward, loss, backward, clip 3.0, AdamW) through ``model.train_step`` and an mmengine optim wrapper
* ``vit_b_generation`` MAGEGenerator (ViT-B config), 4 images, 20 decoding steps + VQGAN decode
* ``vit_b_probe_features`` linear-probe MAGEViT (tokenizer + encoder, global pool), 8 images at 256²
* ``tiny_train_step``  the tiny CPU config's pretraining step, batch 8 at 32²

Variants: ``fp32`` (default), ``bf16`` (the precision switch: network in bf16, tokenizing fp32),
``bf16_tok`` (tokenizer_precision='follow' as well), ``cache`` (token ids given: the token cache path,
tokenizer skipped), ``combined`` (bf16 + cache where it applies), ``fast`` (combined plus the opt-in levers
that deviate from the official computation: ``attention_precision='follow'`` and, in training,
``fused_optimizer=True``), ``compile`` (torch.compile of the network modules), ``combined_compile``
(combined + compile), ``fast_compile`` (fast + compile). ``--quick``/``--smoke`` skip the compile
variants (compiling ViT-B takes minutes on 2 cores) unless ``--variants`` names them; a full run skips
the slowest compiles (``FULL_DEFAULT_SKIP``). ``--quick`` shrinks the ViT-B workloads (64² images: 4×4
tokens, 2 decoding steps, 1 warm-up + 1 run, fewer train-step variants: ``QUICK_SKIP``); ``--smoke`` is the
test size (tiny models, ``SMOKE_VARIANTS``).

A full run starts each (workload, variant) in its own ``python`` process; ``--quick`` and ``--smoke`` start
one process per workload that imports once and forks one child per variant (peak RSS is then the child's:
library pages it never touches after the fork are not counted, up to ~120 MB less than a fresh process;
``"forked": true`` marks those results). Each measurement: warm-up (the first one under
``torch.utils.flop_counter.FlopCounterMode``, which counts the matmul/conv/attention FLOPs of the
workload), then the median of the timed repetitions; the process reports its peak RSS (``ru_maxrss``)
and its RSS right after the imports. The same run measures the machine's fp32 and bf16 matmul
throughput (square matmuls, all threads: the roofline) so every workload's achieved GFLOP/s can be put
against it. Ratios are against our own fp32 variant measured in the same run.

JSON: ``{"machine": {...}, "roofline": {"fp32_gflops", "bf16_gflops"}, "<workload>": {"<variant>":
{"median_s", "times_s", "peak_rss_mb", "import_rss_mb", "gflops", "gflops_per_s", "roofline_fraction",
"speedup_vs_fp32"}}}``.
"""
import argparse
import copy
import json
import os
import os.path as osp
import platform
import resource
import statistics
import subprocess
import sys
import time
from typing import Any, Callable, Dict, Optional

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
WORKLOADS = ('vqgan_encode', 'vit_b_train_step', 'vit_b_generation', 'vit_b_probe_features', 'tiny_train_step')
VARIANTS = {
    'vqgan_encode': ('fp32', 'bf16_tok', 'compile'),
    'vit_b_train_step': ('fp32', 'bf16', 'bf16_tok', 'cache', 'combined', 'fast', 'compile'),
    'vit_b_generation': ('fp32', 'bf16', 'fast', 'compile', 'fast_compile'),
    'vit_b_probe_features': ('fp32', 'bf16', 'bf16_tok', 'fast', 'compile'),
    'tiny_train_step': ('fp32', 'bf16', 'cache', 'combined', 'fast', 'compile', 'combined_compile'),
}
# variants of a full run whose ViT-B compile takes too long on a shared 2-core machine: --variants adds them
FULL_DEFAULT_SKIP = {'vqgan_encode': ('compile', ), 'vit_b_train_step': ('compile', 'bf16_tok'),
                     'vit_b_probe_features': ('compile', ), 'tiny_train_step': ('compile', 'combined_compile')}
# torch.compile of ViT-B takes minutes on 2 CPU cores: --quick and --smoke measure the other fast paths
NO_COMPILE_SIZES = ('quick', 'smoke')
# --quick: the ViT-B train step only as fp32, combined and fast (each step updates 145 M parameters whatever the
# image size: seconds per variant); the tokenizer-in-bf16 lever is shown by the probe
QUICK_SKIP = {'vit_b_train_step': ('bf16', 'bf16_tok', 'cache')}
# sizes whose variants run in children forked from one process per workload (see forked_workers)
FORKED_SIZES = ('quick', 'smoke')
# --smoke (the test): the default and one fast path per workload
SMOKE_VARIANTS = ('fp32', 'bf16', 'bf16_tok', 'cache')
# allocators that reuse large blocks (--allocators): environment of the worker process
ALLOCATORS = {
    'glibc': {},
    # mage_mm.utils.allocator.tune_glibc_malloc() (mallopt: mmap and trim thresholds 1 GiB, no top pad)
    'glibc_mallopt': {'MAGE_MM_MALLOC': '1'},
    'jemalloc': {'LD_PRELOAD': '/usr/lib/x86_64-linux-gnu/libjemalloc.so.2'},
    'tcmalloc': {'LD_PRELOAD': '/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4'},
}
ALLOCATOR_WORKLOADS = (('vqgan_encode', 'fp32'), ('vit_b_train_step', 'fast'))
PRETRAIN_B = osp.join(ROOT, 'configs', 'mage', 'mage_vit-base-p16_8xb512-amp-coslr-1600e_in1k-256px.py')
PROBE_B = osp.join(ROOT, 'configs', 'mage', 'benchmarks', 'vit-base-p16_8xb512-linear-coslr-90e_in1k-256px.py')
GEN_B = osp.join(ROOT, 'configs', 'generation', 'mage-gen_vit-base-p16_iter20-temp6-50k_in1k-256px.py')
GEN_TINY = osp.join(ROOT, 'configs', 'generation', 'mage-gen_vit-tiny_iter8-temp6_photo-crops-32px.py')
PRETRAIN_TINY = osp.join(ROOT, 'configs', 'mage', 'mage_vit-tiny_1xb8-20iters_photo-crops-32px.py')

# sizes: image side, decoding steps, warm-ups, timed repetitions (generation: gen_reps)
SIZES = {
    'full': dict(side=256, gen_steps=20, warmup=1, reps=2, gen_reps=1),
    'quick': dict(side=64, gen_steps=2, warmup=1, reps=1, gen_reps=1),
    'smoke': dict(side=64, gen_steps=2, warmup=1, reps=1, gen_reps=1),
}


# ------------------------------------------------------------------ helpers (worker side)
def rss_mb() -> float:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024
    return float('nan')


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def without_init(cfg: Any) -> Any:
    """Drop Pretrained inits (random weights: no checkpoint files needed)."""
    if isinstance(cfg, dict):
        cfg.pop('init_cfg', None)
        for v in cfg.values():
            without_init(v)
    elif isinstance(cfg, list):
        for v in cfg:
            without_init(v)
    return cfg


def count_flops(fn: Callable[[], Any]) -> int:
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def time_runs(fn: Callable[[], Any], warmup: int, reps: int, flops_in_warmup: bool) -> Dict[str, Any]:
    flops = None
    for i in range(warmup):
        if i == 0 and flops_in_warmup:
            flops = count_flops(fn)
        else:
            fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return dict(times_s=times, median_s=statistics.median(times), gflops=None if flops is None else flops / 1e9)


def _images(batch: int, side: int, seed: int = 0):
    import torch
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, side, side, generator=g)


def _uint8_batch(batch: int, side: int):
    """(B, 3, H, W) uint8, what default_collate makes of PackInputs outputs."""
    import torch
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (batch, 3, side, side), dtype=torch.uint8, generator=g)


def _compile(module) -> None:
    module.compile()  # in place: parameters and state-dict keys unchanged


BF16_VARIANTS = ('bf16', 'bf16_tok', 'combined', 'fast', 'combined_compile', 'fast_compile')


def _variant_flags(variant: str, workload: str) -> Dict[str, Any]:
    return dict(precision='bf16' if variant in BF16_VARIANTS else 'fp32',
                tokenizer_precision='follow' if variant == 'bf16_tok' else 'fp32',
                cache=('train' in workload
                       and variant in ('cache', 'combined', 'fast', 'combined_compile', 'fast_compile')),
                compile=variant in ('compile', 'combined_compile', 'fast_compile'),
                attention_precision='follow' if variant in ('fast', 'fast_compile') else None,
                fused_optimizer=True if variant in ('fast', 'fast_compile') and 'train' in workload else None)


def _vit_b_tokenizer_side(side: int) -> int:
    return side  # the official VQGAN has factor 16: side 256 → 16x16 tokens, 128 → 8x8


def worker(workload: str, variant: str, size: str) -> Dict[str, Any]:
    import_rss_before = rss_mb()
    import torch

    import mage_mm.compat  # noqa: F401
    flags = _variant_flags(variant, workload)
    sz = SIZES[size]
    side = sz['side']
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    if workload != 'vqgan_encode':  # (generation too: init_generator imports it; mmagic it does not)
        import mage_mm.register  # noqa: F401
    from mage_mm.utils.allocator import tune_glibc_malloc
    from mage_mm.utils.precision import precision_context
    out: Dict[str, Any] = dict(import_rss_mb=None, threads=torch.get_num_threads(),
                               malloc_tuned=tune_glibc_malloc(default=False))  # MAGE_MM_MALLOC=1: the tools' call
    torch.manual_seed(0)

    def enc_ctx():
        return precision_context(flags['precision'], 'cpu')

    if workload == 'vqgan_encode':
        # the class itself, as mage_mm.apis.load_tokenizer builds it: no registry lookup, so no import of
        # mmpretrain's model zoo (and the mmdet, albumentations... it imports: 110 MB of RSS, measured)
        from mage_mm.models.tokenizers.vqgan import MAGEVQGAN
        arch = 'tiny' if size == 'smoke' else 'official'
        out['import_rss_mb'] = rss_mb()
        vq = MAGEVQGAN(arch=arch, autocast_encode=flags['tokenizer_precision'] == 'follow').eval()
        images = _images(4, side)
        if flags['compile']:
            _compile(vq.encoder)

        def fn():
            with torch.no_grad(), enc_ctx():
                vq.encode(images)
        res = time_runs(fn, sz['warmup'], sz['reps'], not flags['compile'])

    elif workload in ('vit_b_train_step', 'tiny_train_step'):
        from mmengine.optim import build_optim_wrapper
        from mmpretrain.registry import MODELS
        from mmpretrain.structures import DataSample

        from mage_mm.engine.precision import apply_precision
        from mage_mm.models.utils.token_ids import tokenizer_sha256
        tiny = workload == 'tiny_train_step' or size == 'smoke'
        cfg = Config.fromfile(PRETRAIN_TINY if tiny else PRETRAIN_B)
        batch, bside = (8, 32) if workload == 'tiny_train_step' else (4, 32 if size == 'smoke' else side)
        apply_precision(cfg, flags['precision'], flags['tokenizer_precision'], device='cpu',
                        attention_precision=flags['attention_precision'], fused_optimizer=flags['fused_optimizer'])
        model_cfg = without_init(copy.deepcopy(cfg.model.to_dict()))
        if flags['cache']:
            model_cfg['data_preprocessor'] = dict(type='BaseDataPreprocessor')
        if not tiny and bside != 256:
            model_cfg['backbone']['token_grid'] = bside // 16
            model_cfg['neck']['num_tokens'] = (bside // 16)**2
        out['import_rss_mb'] = rss_mb()
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            model = MODELS.build(model_cfg)
            model.train()
            optim = build_optim_wrapper(model, cfg.optim_wrapper)
        if flags['cache']:
            tok = model.backbone.tokenizer
            sha = tokenizer_sha256(tok)
            grid = tok.token_grid(bside, bside)
            with torch.no_grad():
                ids = tok.encode(_images(batch, bside))
            data = dict(inputs=ids, data_samples=[DataSample(metainfo=dict(tokenizer_sha256=sha, token_grid=grid))
                                                  for _ in range(batch)])
        else:
            data = dict(inputs=_uint8_batch(batch, bside), data_samples=[DataSample() for _ in range(batch)])
        if flags['compile']:
            for part in (model.backbone, model.neck, model.head):
                _compile(part)

        def fn():
            model.train_step(copy.copy(data), optim)
        res = time_runs(fn, sz['warmup'] + (1 if flags['compile'] else 0), sz['reps'], not flags['compile'])

    elif workload == 'vit_b_generation':
        from mage_mm.apis import init_generator
        from mage_mm.apis.inference import load_generation_config
        tiny = size == 'smoke'
        # as init_generator reads a config path (tools/generate.py): without the mmagic leaves of custom_imports
        cfg = load_generation_config(GEN_TINY if tiny else GEN_B)
        cfg.model = without_init(cfg.model.to_dict())
        if not tiny and side != 256:
            cfg.model['backbone']['token_grid'] = side // 16
            cfg.model['neck']['num_tokens'] = (side // 16)**2
        out['import_rss_mb'] = rss_mb()
        model = init_generator(cfg, None, device='cpu', precision=flags['precision'],
                               attention_precision=flags['attention_precision'])
        model.tokenizer.release_encoder()  # as tools/generate.py does: generation never encodes
        if flags['compile']:
            for part in (model.backbone, model.neck, model.head):
                _compile(part)
        steps = sz['gen_steps']

        def fn():
            model.generate([0, 1, 2, 3], num_iter=steps)
        res = time_runs(fn, sz['warmup'] + (1 if flags['compile'] else 0), sz['gen_reps'], not flags['compile'])
        out['mmagic_imported'] = 'mmagic' in sys.modules
        out['diffusers_imported'] = 'diffusers' in sys.modules
        out['transformers_imported'] = 'transformers' in sys.modules

    elif workload == 'vit_b_probe_features':
        from mmpretrain.registry import MODELS
        tiny = size == 'smoke'
        cfg = Config.fromfile(PROBE_B)
        bb = without_init(cfg.model.backbone.to_dict())
        if tiny:
            bb.update(arch=dict(embed_dims=64, num_layers=2, num_heads=4, feedforward_channels=256), token_grid=4)
            bb['tokenizer'] = dict(type='MAGEVQGAN', arch='tiny')
            bb.update(codebook_size=256, num_legacy_class_ids=1, fake_class_id=256)
            fside = 16
        else:
            fside = side
            if side != 256:
                bb['token_grid'] = side // 16
        bb['tokenizer']['autocast_encode'] = flags['tokenizer_precision'] == 'follow'
        if flags['attention_precision'] is not None:
            bb['fp32_attention'] = flags['attention_precision'] == 'fp32'
        out['import_rss_mb'] = rss_mb()
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            backbone = MODELS.build(bb).eval()
        images = _images(8, fside)
        if flags['compile']:
            _compile(backbone)

        def fn():
            with torch.no_grad(), precision_context(flags['precision'], 'cpu'):
                backbone(images)
        res = time_runs(fn, sz['warmup'] + (1 if flags['compile'] else 0), sz['reps'], not flags['compile'])
    else:
        raise SystemExit(f'unknown workload {workload}')
    out.update(res)
    out['peak_rss_mb'] = peak_rss_mb()
    out['minor_page_faults'] = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    out['loadavg_1min_end'] = os.getloadavg()[0]  # a shared machine: how busy it was while this ran
    if flags['compile']:  # why compile helps or not: graphs, graph breaks, recompilations
        from torch._dynamo.utils import counters
        out['dynamo'] = {k: {str(kk): vv for kk, vv in v.items()} for k, v in counters.items()
                         if k in ('stats', 'graph_break', 'recompiles', 'frames')}
    out['start_rss_mb'] = import_rss_before
    return out


def token_change(seed: int = 0) -> Dict[str, Any]:
    """How many token ids change when the VQGAN encodes in bf16 (``tokenizer_precision='follow'``) instead of fp32.

    On foolbox's 20 ImageNet val photos (short side resized to 256 and centre-cropped, PIL bicubic), with the
    official architecture (f16, 1024 codes) and the tiny one at 32 px. No trained VQGAN weights can be
    downloaded here: the weights are random (seed ``seed``), and the numbers say how sensitive the
    nearest-code choice is to bf16 encoder arithmetic for such a network, not for the released tokenizer.
    """
    import glob
    import importlib.util

    import numpy as np
    import torch
    from mmpretrain.registry import MODELS
    from PIL import Image

    import mage_mm.register  # noqa: F401
    from mage_mm.utils.precision import precision_context
    spec = importlib.util.find_spec('foolbox')
    if spec is None:
        return dict(error='foolbox is not installed')
    paths = sorted(glob.glob(osp.join(osp.dirname(spec.origin), 'data', 'imagenet_*.jpg')))
    out: Dict[str, Any] = dict(images=len(paths), weights=f'random (torch seed {seed})')
    for arch, side in (('official', 256), ('tiny', 32)):
        imgs = []
        for p in paths:
            im = Image.open(p).convert('RGB')
            scale = side / min(im.size)
            im = im.resize((max(side, round(im.width * scale)), max(side, round(im.height * scale))), Image.BICUBIC)
            left, top = (im.width - side) // 2, (im.height - side) // 2
            imgs.append(np.asarray(im.crop((left, top, left + side, top + side))))
        x = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).float() / 255
        torch.manual_seed(seed)
        vq = MODELS.build(dict(type='MAGEVQGAN', arch=arch, _scope_='mmpretrain')).eval()
        with torch.no_grad():
            ref = torch.cat([vq.encode(x[i:i + 4]) for i in range(0, len(x), 4)])
            with precision_context('bf16', 'cpu'):
                default = torch.cat([vq.encode(x[i:i + 4]) for i in range(0, len(x), 4)])
                vq.autocast_encode = True
                low = torch.cat([vq.encode(x[i:i + 4]) for i in range(0, len(x), 4)])
        out[arch] = dict(image_size=side, tokens=int(ref.numel()), changed_default=int((default != ref).sum()),
                         changed_follow=int((low != ref).sum()),
                         changed_follow_fraction=float((low != ref).float().mean()),
                         images_with_a_change=int((low != ref).any(1).sum()))
    return out


def roofline(size: str) -> Dict[str, float]:
    """fp32 and bf16 GFLOP/s of square matmuls, all threads: the best of the timed repetitions (a peak).

    The best, not the median: a peak is what the machine can do, and a single slow repetition (another
    process, AMX units waking up) must not lower the denominator (a median of 5 after 2 warm-ups gave
    148 / 716 GFLOP/s at one start and 281–301 / 1,845–1,931 at others on this machine).
    """
    import torch
    n = {'full': 2048, 'quick': 1536, 'smoke': 512}[size]
    res = {}
    for name, dtype in (('fp32', torch.float32), ('bf16', torch.bfloat16)):
        a = torch.randn(n, n).to(dtype)
        b = torch.randn(n, n).to(dtype)
        for _ in range(5):
            a @ b
        times = []
        for _ in range(10):
            t0 = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - t0)
        res[f'{name}_gflops'] = 2 * n**3 / min(times) / 1e9
        res[f'{name}_gflops_median'] = 2 * n**3 / statistics.median(times) / 1e9
    res['matmul_n'] = n
    return res


def machine() -> Dict[str, Any]:
    info: Dict[str, Any] = dict(platform=platform.platform(), python=platform.python_version(),
                                cpu_count=os.cpu_count())
    try:
        with open('/proc/cpuinfo') as f:
            lines = f.read().splitlines()
        info['cpu_model'] = next((ln.split(':', 1)[1].strip() for ln in lines if ln.startswith('model name')), None)
        flags = next((ln.split(':', 1)[1].split() for ln in lines if ln.startswith('flags')), [])
        info['amx_bf16'] = 'amx_bf16' in flags
        info['avx512_bf16'] = 'avx512_bf16' in flags
    except OSError:
        pass
    try:
        info['loadavg_1min'] = os.getloadavg()[0]
    except OSError:
        pass
    import torch
    info['torch'] = torch.__version__
    info['torch_threads'] = torch.get_num_threads()
    return info


def _failed(error: str) -> Dict[str, Any]:
    return dict(error=error[-1500:], median_s=None, peak_rss_mb=None, gflops_per_s=None)


def run_one(workload: str, variant: str, size: str, env: Optional[Dict[str, str]], timeout: int) -> Dict[str, Any]:
    return run_group(workload, [variant], size, env, timeout)[variant]


def run_group(workload: str, variants, size: str, env: Optional[Dict[str, str]], timeout: int) -> Dict[str, Any]:
    """Results of ``variants`` of one workload: one fresh process, which forks one child per variant."""
    variants = list(variants)
    cmd = [sys.executable, osp.abspath(__file__), '--worker', workload, ','.join(variants), '--size', size]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=dict(os.environ, **(env or {})),
                          timeout=timeout * len(variants))
    found = {}
    for ln in proc.stdout.splitlines():
        if ln.startswith('BENCH_RESULT '):
            variant, payload = ln[len('BENCH_RESULT '):].split(' ', 1)
            found[variant] = json.loads(payload)
    return {v: found.get(v) or _failed(proc.stderr or proc.stdout or f'exit status {proc.returncode}')
            for v in variants}


def preimport(workload: str) -> None:
    """The imports of a worker, done once before forking (the children share them copy-on-write)."""
    import torch  # noqa: F401
    from mmengine.config import Config  # noqa: F401

    import mage_mm.compat  # noqa: F401
    if workload == 'vit_b_generation':
        import mage_mm.apis  # noqa: F401
        import mage_mm.models.generators.generator  # noqa: F401  the class; no mmagic (the leaf would import it)
        import mage_mm.register  # noqa: F401
    elif workload == 'vqgan_encode':
        import mage_mm.models.tokenizers.vqgan  # noqa: F401  (as the worker: the class, not the registry)
    else:
        import mage_mm.register  # noqa: F401


def forked_workers(workload: str, variants, size: str) -> int:
    """Run each variant in a child forked from this process after the imports (``--quick`` / ``--smoke``).

    Saves one interpreter start and import per variant (seconds each on 2 cores); every child starts
    from the same imported state, so its ``ru_maxrss`` is the import weight plus its own peak, as in a
    fresh process. No thread pool has started before the fork (only imports ran here).
    """
    preimport(workload)
    status = 0
    for variant in variants:
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                res = worker(workload, variant, size)
                res['forked'] = True
                print(f'BENCH_RESULT {variant} ' + json.dumps(res), flush=True)
            except BaseException:  # the parent reports the child's traceback
                import traceback
                traceback.print_exc()
                sys.stderr.flush()
                code = 1
            os._exit(code)
        _, wstatus = os.waitpid(pid, 0)
        status = status or os.waitstatus_to_exitcode(wstatus)
    return status


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description='mage_mm fp32 vs fast paths, one process per measurement')
    parser.add_argument('--json', required=False, help='write the results here')
    size = parser.add_mutually_exclusive_group()
    size.add_argument('--quick', action='store_true', help='ViT-B at 64², 1 timed run, no compile variants')
    size.add_argument('--smoke', action='store_true', help='tiny models only (the test)')
    parser.add_argument('--workloads', default=','.join(WORKLOADS))
    parser.add_argument('--variants', default=None, help='only these variants (comma separated)')
    parser.add_argument('--env', nargs='*', default=[], help='KEY=VALUE for the worker processes (allocator...)')
    parser.add_argument('--timeout', type=int, default=1800, help='seconds per worker process')
    parser.add_argument('--token-change', action='store_true',
                        help='only measure how many token ids bf16 tokenising changes on real photos, print JSON')
    parser.add_argument('--allocators', action='store_true',
                        help=f'also time {ALLOCATOR_WORKLOADS} under each of {sorted(ALLOCATORS)}')
    parser.add_argument('--worker', nargs=2, metavar=('WORKLOAD', 'VARIANT'), help=argparse.SUPPRESS)
    parser.add_argument('--size', default='full', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        variants = args.worker[1].split(',')
        if len(variants) > 1:
            return forked_workers(args.worker[0], variants, args.size)
        res = worker(args.worker[0], variants[0], args.size)
        print(f'BENCH_RESULT {variants[0]} ' + json.dumps(res), flush=True)
        return 0
    if args.token_change:
        print(json.dumps(token_change(), indent=1))
        return 0
    if not args.json:
        parser.error('--json FILE is required')
    size_name = 'smoke' if args.smoke else 'quick' if args.quick else 'full'
    env = dict(kv.split('=', 1) for kv in args.env)
    t0 = time.time()
    result: Dict[str, Any] = dict(machine=machine(), size=dict(SIZES[size_name], name=size_name), env=env)
    result['roofline'] = roofline(size_name)
    wanted = set(args.variants.split(',')) if args.variants else None
    for workload in args.workloads.split(','):
        if workload not in VARIANTS:
            parser.error(f'unknown workload {workload}; choose from {WORKLOADS}')
        result[workload] = {}
        todo = []
        for variant in VARIANTS[workload]:
            if wanted is not None and variant not in wanted and variant != 'fp32':
                continue
            if 'compile' in variant and size_name in NO_COMPILE_SIZES and wanted is None:
                continue
            if size_name == 'smoke' and wanted is None and variant not in SMOKE_VARIANTS:
                continue
            skip = dict(full=FULL_DEFAULT_SKIP, quick=QUICK_SKIP).get(size_name, {})
            if wanted is None and variant in skip.get(workload, ()):
                continue
            todo.append(variant)
        if size_name in FORKED_SIZES:  # one process per workload, one forked child per variant
            results = run_group(workload, todo, size_name, env, args.timeout)
        else:  # one fresh process per (workload, variant)
            results = {variant: run_one(workload, variant, size_name, env, args.timeout) for variant in todo}
        for variant, r in results.items():
            result[workload][variant] = r
            print(f'[bench] {workload:22s} {variant:9s} '
                  + (f"{r['median_s']:.3f} s  peak {r['peak_rss_mb']:.0f} MB" if r.get('median_s') is not None
                     else f"FAILED: {r.get('error', '')[-300:]}"), flush=True)
        # FLOPs: counted in the eager warm-up; a compiled variant does the FLOPs of its eager twin
        twin = dict(compile='fp32', combined_compile='combined' if 'combined' in result[workload] else 'bf16',
                    fast_compile='fast')
        fp32 = result[workload].get('fp32', {}).get('median_s')
        for variant, r in result[workload].items():
            if r.get('median_s') is None:
                continue
            flops = r.get('gflops')
            if flops is None:
                flops = result[workload].get(twin.get(variant, ''), {}).get('gflops')
                r['gflops'] = flops
            r['gflops_per_s'] = None if flops is None else flops / r['median_s']
            peak = result['roofline']['bf16_gflops' if variant in BF16_VARIANTS else 'fp32_gflops']
            r['roofline_fraction'] = None if r['gflops_per_s'] is None else r['gflops_per_s'] / peak
            r['fp32_roofline_fraction'] = (None if r['gflops_per_s'] is None
                                           else r['gflops_per_s'] / result['roofline']['fp32_gflops'])
            r['speedup_vs_fp32'] = None if not fp32 else fp32 / r['median_s']
    if args.allocators:
        result['allocators'] = {}
        for name, alloc_env in ALLOCATORS.items():
            if 'LD_PRELOAD' in alloc_env and not osp.isfile(alloc_env['LD_PRELOAD']):
                result['allocators'][name] = dict(error=f"{alloc_env['LD_PRELOAD']} not installed")
                continue
            result['allocators'][name] = {}
            for workload, variant in ALLOCATOR_WORKLOADS:
                r = run_one(workload, variant, size_name, dict(env, **alloc_env), args.timeout)
                result['allocators'][name][f'{workload}/{variant}'] = r
                print(f'[bench] allocator {name:12s} {workload}/{variant}: '
                      + (f"{r['median_s']:.3f} s  peak {r['peak_rss_mb']:.0f} MB  "
                         f"minor faults {r.get('minor_page_faults')}" if r.get('median_s') is not None
                         else f"FAILED: {r.get('error', '')[-300:]}"), flush=True)
    result['wall_s'] = time.time() - t0
    os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
    sys.path.insert(0, ROOT)
    from mage_mm.utils.atomic import atomic_write
    with atomic_write(args.json, 'w') as f:
        json.dump(result, f, indent=1, sort_keys=True)
    print(f'[bench] wrote {args.json} in {result["wall_s"]:.0f} s', flush=True)
    return 0


if __name__ == '__main__':
    sys.path.insert(0, ROOT)
    sys.exit(main())
