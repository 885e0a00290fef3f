"""Where the time of a MAGE pretraining step goes: forward, backward, clip, optimizer step, mask drawing.

    python benchmarks/profile_train_step.py [--model b|tiny|mini] [--batch 4] [--side 256] [--precision bf16]
        [--cache] [--reps 3] [--fast | --ab] [--profile] [--json FILE]

The step is ``model.train_step`` taken apart into the calls mmengine's ``OptimWrapper.update_params``
makes (same order, same arguments), each timed with ``time.perf_counter`` (CPU: synchronous), median of
``--reps`` after one warm-up. ``--fast`` applies the opt-in fast-path keys (``attention_precision='follow'``,
``fused_optimizer=True``); ``--ab`` builds the step both ways (same seed, same batch) and alternates them in
this one process (A, B, A, B: fair on a shared machine); with ``--vs-fp32`` A is the fp32 default instead
(images through the tokenizer, no fast path). ``--profile`` also prints ``torch.profiler``'s top
operators of one step. Random weights.
"""
import argparse
import copy
import json
import os.path as osp
import statistics
import sys
import time
from typing import Any, Dict

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
PRETRAIN = dict(b=osp.join(ROOT, 'configs', 'mage', 'mage_vit-base-p16_8xb512-amp-coslr-1600e_in1k-256px.py'),
                tiny=osp.join(ROOT, 'configs', 'mage', 'mage_vit-tiny_1xb8-20iters_photo-crops-32px.py'),
                mini=osp.join(ROOT, 'configs', 'mage', 'mage_vit-mini_1xb64-3000iters_fashion-mnist-32px.py'))


def build(model: str, batch: int, side: int, precision: str, cache: bool, fast: bool):
    """The model, its optim wrapper and one batch, as ``benchmarks/bench_mage.py`` builds them."""
    import logging

    import torch
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS
    from mmpretrain.structures import DataSample

    import mage_mm.register  # noqa: F401
    from mage_mm.engine.precision import apply_precision
    from mage_mm.models.utils.token_ids import tokenizer_sha256
    sys.path.insert(0, osp.join(ROOT, 'benchmarks'))
    from bench_mage import _images, _uint8_batch, without_init
    from mmengine.logging import MMLogger
    MMLogger.get_current_instance().setLevel(logging.ERROR)  # not the per-parameter optimizer notes
    cfg = Config.fromfile(PRETRAIN[model])
    apply_precision(cfg, precision, 'fp32', device='cpu', attention_precision='follow' if fast else None,
                    fused_optimizer=True if fast else None)
    model_cfg = without_init(copy.deepcopy(cfg.model.to_dict()))
    if cache:
        model_cfg['data_preprocessor'] = dict(type='BaseDataPreprocessor')
    if model == 'b' and side != 256:
        model_cfg['backbone']['token_grid'] = side // 16
        model_cfg['neck']['num_tokens'] = (side // 16)**2
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        net = MODELS.build(model_cfg)
        net.train()
        optim = build_optim_wrapper(net, cfg.optim_wrapper)
    if cache:
        tok = net.backbone.tokenizer
        with torch.no_grad():
            ids = tok.encode(_images(batch, side))
        meta = dict(tokenizer_sha256=tokenizer_sha256(tok), token_grid=tok.token_grid(side, side))
        data = dict(inputs=ids, data_samples=[DataSample(metainfo=meta) for _ in range(batch)])
    else:
        data = dict(inputs=_uint8_batch(batch, side), data_samples=[DataSample() for _ in range(batch)])
    return net, optim, data


def step_parts(net, optim, data) -> Dict[str, float]:
    """One ``train_step`` split into its parts (seconds each)."""
    t = {}
    t0 = time.perf_counter()
    with optim.optim_context(net):
        batch = net.data_preprocessor(copy.copy(data), True)
        t1 = time.perf_counter()
        losses = net._run_forward(batch, mode='loss')
    t2 = time.perf_counter()
    loss, _ = net.parse_losses(losses)
    loss = optim.scale_loss(loss)
    optim.backward(loss)
    t3 = time.perf_counter()
    if optim.clip_grad_kwargs:
        optim._clip_grad()
    t4 = time.perf_counter()
    optim.optimizer.step()
    t5 = time.perf_counter()
    optim.zero_grad()
    t6 = time.perf_counter()
    t.update(preprocess=t1 - t0, forward=t2 - t1, backward=t3 - t2, clip=t4 - t3, optimizer_step=t5 - t4,
             zero_grad=t6 - t5, total=t6 - t0)
    return t


def mask_draw_time(net, batch: int, reps: int = 20) -> float:
    """Median seconds of one ``MAGEViT.sample_masks`` call (ratio draw + per-sample masks)."""
    bb = net.backbone
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        bb.sample_masks(batch, bb.num_tokens)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--model', choices=sorted(PRETRAIN), default='b')
    parser.add_argument('--batch', type=int, default=4)
    parser.add_argument('--side', type=int, default=256)
    parser.add_argument('--precision', default='bf16')
    parser.add_argument('--cache', action='store_true', help='token ids as input (the token cache path)')
    parser.add_argument('--fast', action='store_true', help="attention_precision='follow' and fused_optimizer=True")
    parser.add_argument('--ab', action='store_true', help='faithful and --fast steps alternated in one process')
    parser.add_argument('--vs-fp32', action='store_true', help='--ab against the fp32 default (tokenizer, no cache)')
    parser.add_argument('--reps', type=int, default=3)
    parser.add_argument('--profile', action='store_true', help='also print torch.profiler top operators')
    parser.add_argument('--json', default=None)
    args = parser.parse_args(argv)
    import torch
    res: Dict[str, Any] = {}
    if args.ab:
        base = ('fp32', False) if args.vs_fp32 else (args.precision, args.cache)
        built = dict(faithful=build(args.model, args.batch, args.side, *base, False),
                     fast=build(args.model, args.batch, args.side, args.precision, args.cache, True))
        runs = {name: [] for name in built}
        for i in range(args.reps + 1):  # the first round is the warm-up
            for name, (net, optim, data) in built.items():
                r = step_parts(net, optim, data)
                if i:
                    runs[name].append(r)
        for name, rs in runs.items():
            res[name] = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
        res['speedup_total'] = res['faithful']['total'] / res['fast']['total']
        net, optim, data = built['fast']
    else:
        net, optim, data = build(args.model, args.batch, args.side, args.precision, args.cache, args.fast)
        step_parts(net, optim, data)  # warm-up
        runs = [step_parts(net, optim, data) for _ in range(args.reps)]
        res.update({k: statistics.median(r[k] for r in runs) for k in runs[0]})
    res['mask_draw'] = mask_draw_time(net, args.batch)
    res['threads'] = torch.get_num_threads()
    res['args'] = vars(args)
    print(json.dumps(res, indent=1))
    if args.profile:
        from torch.profiler import ProfilerActivity, profile
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            step_parts(net, optim, data)
        print(prof.key_averages().table(sort_by='self_cpu_time_total', row_limit=30))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.path.insert(0, ROOT)
    sys.exit(main())
