"""mage_mm.utils.allocator.release_free_heap: glibc's free heap goes back to the kernel (README "Performance", memory).

Runs in a fresh interpreter: the RSS of this test process depends on everything imported before.
"""
import json
import os
import subprocess
import sys

import pytest

CODE = r'''
import json, os
import torch
from mage_mm.utils.allocator import release_free_heap

def rss_mb():
    with open('/proc/self/status') as f:
        return next(int(ln.split()[1]) / 1024 for ln in f if ln.startswith('VmRSS:'))

# 64 KiB blocks sit below glibc's initial mmap threshold (128 KiB): they come from the heap; the last one is
# kept, so the freed blocks lie below a live one and glibc's own top-of-heap trimming cannot return them
blocks = [torch.ones(16 * 1024) for _ in range(4000)]  # ~250 MB
keep = blocks[-1]
del blocks
held = rss_mb()
did = release_free_heap()
print(json.dumps(dict(held=held, after=rss_mb(), did=did, keep=float(keep[0]))))
'''


def _run(env_extra):
    res = subprocess.run([sys.executable, '-c', CODE], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, OMP_NUM_THREADS='1', **env_extra))
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='glibc malloc_trim and /proc are Linux')
def test_release_free_heap_returns_the_freed_heap_and_can_be_turned_off():
    on = _run({})
    assert on['did'] and on['held'] - on['after'] > 150, on  # ~250 MB freed in the heap, most of it returned
    off = _run({'MAGE_MM_TRIM': '0'})
    assert not off['did'] and off['held'] - off['after'] < 20, off
