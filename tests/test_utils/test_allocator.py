"""mage_mm.utils.allocator: the glibc mallopt tunables take effect (large blocks reused: fewer page faults)."""
import os
import subprocess
import sys

import pytest

CHILD = r'''
import resource, sys
import torch
from mage_mm.utils.allocator import tune_malloc_for_tools
tuned = tune_malloc_for_tools()
x = torch.ones(48 * 2**20 // 4)  # 48 MB: above glibc's largest dynamic mmap threshold (32 MB)
faults = []
for _ in range(6):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    y = x * 2  # a 48 MB block: fresh (untuned) or the one freed a moment ago (tuned)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    del y
# the least over the repeats after the first: robust to the kernel reclaiming free pages now and then
print(tuned, min(faults[1:]))
'''


def run(value):
    env = dict(os.environ, MAGE_MM_MALLOC=value, OMP_NUM_THREADS='1')
    out = subprocess.run([sys.executable, '-c', CHILD], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    tuned, faults = out.stdout.split()
    return tuned == 'True', int(faults)


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='glibc mallopt')
def test_tunables_reuse_large_blocks_and_can_be_switched_off():
    tuned, faults_tuned = run('1')
    off, faults_off = run('0')
    assert tuned and not off
    # untuned: every 48 MB block is a fresh mmap (12,288 pages of 4 KiB to fault in; fewer with huge pages);
    # tuned: the freed block is reused from the heap, next to no faults
    assert faults_tuned < faults_off / 4, (faults_tuned, faults_off)
