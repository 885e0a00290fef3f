"""Attention speed: mage_mm's SDPA block vs the official explicit attention, same weights.

    python benchmarks/bench_attention.py [--dim 768 --heads 12 --batch 8 --device cpu --dtype float32]

The baseline reproduces the official `Attention.forward` (q·kᵀ in fp32 with autocast off, row-max
subtraction, softmax, attn @ v). Both run in the same process, interleaved, forward+backward in
train mode with dropout 0 (so outputs can be compared), for the two sequence lengths MAGE uses:
129 tokens (pretraining, half the tokens dropped) and 257 (decoding / features). Prints the median
time of each and the speed ratio; the numbers in the README come from this script.
"""
import argparse
import os.path as osp
import statistics
import sys
import time

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from mage_mm.models.utils.transformer import Attention  # noqa: E402


class OfficialAttention(Attention):
    """The official computation on the same parameters (qkv, proj)."""

    def forward(self, x, attn_mask=None):
        B, N, C = x.shape
        h = self.num_heads
        qkv = self.qkv(x).reshape(B, N, 3, h, C // h).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        with torch.autocast(x.device.type, enabled=False):
            attn = (q.float() @ k.float().transpose(-2, -1)) * (C // h)**-0.5
        attn = attn - torch.max(attn, dim=-1, keepdim=True)[0]
        attn = attn.softmax(dim=-1)
        x = (attn.to(v.dtype) @ v).transpose(1, 2).reshape(B, N, C)
        return self.proj_drop(self.proj(x))


def timeit(fn, warmup, iters, sync):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        sync()
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--dim', type=int, default=768)
    p.add_argument('--heads', type=int, default=12)
    p.add_argument('--batch', type=int, default=8)
    p.add_argument('--iters', type=int, default=20)
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--dtype', default='float32', choices=['float32', 'bfloat16', 'float16'],
                   help='autocast dtype (float32 = no autocast)')
    args = p.parse_args()
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == 'cuda' else (lambda: None)
    ours = Attention(args.dim, args.heads).to(dev)
    ref = OfficialAttention(args.dim, args.heads).to(dev)
    ref.load_state_dict(ours.state_dict())
    amp = args.dtype != 'float32'
    dtype = getattr(torch, args.dtype)
    print(f'device={dev} threads={torch.get_num_threads()} dtype={args.dtype} dim={args.dim} '
          f'heads={args.heads} batch={args.batch} torch={torch.__version__}')
    for n in (129, 257):
        x = torch.randn(args.batch, n, args.dim, device=dev, requires_grad=True)

        def step(module):
            def run():
                with torch.autocast(dev.type, dtype=dtype, enabled=amp):
                    out = module(x)
                out.float().sum().backward()
            return run

        with torch.no_grad(), torch.autocast(dev.type, dtype=dtype, enabled=amp):
            diff = (ours(x).float() - ref(x).float()).abs().max().item()
        t_ref = timeit(step(ref), 3, args.iters, sync)
        t_ours = timeit(step(ours), 3, args.iters, sync)
        print(f'seq {n:3d}: official {t_ref * 1e3:8.2f} ms | mage_mm SDPA {t_ours * 1e3:8.2f} ms | '
              f'speed-up x{t_ref / t_ours:.2f} | max |diff| {diff:.1e}')


if __name__ == '__main__':
    main()
