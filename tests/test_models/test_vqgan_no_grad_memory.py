"""The VQGAN's no-autograd path (in-place SiLU and residual adds, README "Performance", memory) gives the same bits
as the autograd path, for every architecture, in fp32 and under bf16 autocast, and holds less memory."""
import json
import os
import subprocess
import sys

import pytest
import torch

from mage_mm.models.tokenizers.vqgan import MAGEVQGAN


def _grad_path(vq: MAGEVQGAN) -> None:
    for p in vq.parameters():  # autograd on: forward takes the out-of-place path (the official operations)
        p.requires_grad_(True)


@pytest.mark.parametrize('arch,side,batch', [('official', 64, 2), ('tiny', 32, 5), ('parity-tiny', 32, 3)])
def test_no_grad_path_is_bit_identical(arch, side, batch):
    torch.manual_seed(0)
    vq = MAGEVQGAN(arch=arch).eval()
    _grad_path(vq)
    x = torch.rand(batch, 3, side, side)
    with torch.no_grad():
        z0 = vq.encode_latent(x)
        ids = vq.quantize.nearest_codes(z0)
        d0 = vq.decode(ids)
    with torch.enable_grad():
        z1 = vq.encode_latent(x)
        d1 = vq.decode(ids)
    assert z1.requires_grad and d1.requires_grad  # really the autograd path
    assert torch.equal(z0, z1.detach()) and torch.equal(d0, d1.detach())
    with torch.autocast('cpu', dtype=torch.bfloat16):
        with torch.no_grad():
            b0 = vq.decode(ids)
        with torch.enable_grad():
            b1 = vq.decode(ids)
    assert torch.equal(b0, b1.detach())


PEAK_CODE = r"""
import json, torch, torch.nn.functional as F
from mage_mm.models.tokenizers.vqgan import ResBlock

def hwm_mb():
    with open('/proc/self/status') as f:
        return next(int(ln.split()[1]) / 1024 for ln in f if ln.startswith('VmHWM:'))

def reset_hwm():
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')

def reference(b, x):  # the autograd path's operations, out of place (what ran before the no-grad path)
    h = b.conv1(F.silu(b.norm1(x)))
    h = b.conv2(b.dropout(F.silu(b.norm2(h))))
    return x + h

torch.manual_seed(0)
block = ResBlock(64, 64).eval()
x = torch.randn(2, 64, 256, 256)  # 32 MiB maps: above glibc's mmap threshold, so RSS follows what is live
out = {}
with torch.no_grad():
    for name, fn in (('reference', lambda: reference(block, x)), ('lean', lambda: block._forward_no_grad(x))) * 2:
        reset_hwm()
        base = hwm_mb()
        y = fn()
        out[name] = hwm_mb() - base
        del y
print(json.dumps(dict(out, unit=x.numel() * 4 / 2**20)))
"""


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='peak RSS from /proc (Linux)')
def test_no_grad_block_holds_one_activation_less():
    """Peak RSS of one 256² block without autograd: at least half an activation below the out-of-place code."""
    res = subprocess.run([sys.executable, '-c', PEAK_CODE], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert res.returncode == 0, res.stderr[-2000:]
    m = json.loads(res.stdout.strip().splitlines()[-1])
    assert m['lean'] <= m['reference'] - m['unit'] / 2, m
