"""tools/generate.py output folders: complete images only, no links, one run per folder, what made them recorded.

A randomly initialised tiny MAGE is enough here (the images are noise; only the
files are under test), so these tests need no training run.
"""
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from generation_utils import ROOT, TINY_GEN_CFG, save_random_tiny_checkpoint  # noqa: F401
from PIL import Image
from tool_utils import load_tool

generate = load_tool('generate')


@pytest.fixture(scope='module')
def ckpts(tmp_path_factory):
    root = tmp_path_factory.mktemp('ckpts')
    return (save_random_tiny_checkpoint(str(root / 'a.pth'), seed=0),
            save_random_tiny_checkpoint(str(root / 'b.pth'), seed=1))


def run_generate(ckpt, out, *extra):
    return generate.main([TINY_GEN_CFG, ckpt, '--out-dir', str(out), '--no-progress', '--batch-size', '4',
                          '--num-iter', '2', *extra])


def pngs(folder):
    return sorted(n for n in os.listdir(folder) if n[:6].isdigit() and n.endswith('.png'))


def pixels(folder, name):
    return np.asarray(Image.open(osp.join(folder, name)))


def test_truncated_and_foreign_images_are_regenerated(ckpts, tmp_path):
    out = tmp_path / 'gen'
    run_generate(ckpts[0], out, '--num-images', '3', '--grid', '0')
    ref = {n: pixels(out, n) for n in pngs(out)}
    data = (out / '000001.png').read_bytes()
    (out / '000001.png').write_bytes(data[:len(data) // 2])  # a half-written PNG under its final name
    Image.new('RGB', (8, 8)).save(out / '000002.png')  # decodes, but not at the model's size
    with pytest.raises(ValueError, match=r'cannot read .*000001.png.*rerun'):  # the npz step names the file
        generate.write_npz(str(out), 3, str(out / 'samples.npz'))
    stamp = os.stat(out / '000000.png').st_mtime_ns
    run_generate(ckpts[0], out, '--num-images', '3', '--grid', '2', '--npz')
    assert os.stat(out / '000000.png').st_mtime_ns == stamp  # a complete image is kept
    for n, arr in ref.items():
        assert np.array_equal(pixels(out, n), arr), n
    with np.load(out / 'samples.npz') as npz:
        assert npz['arr_0'].shape == (3, 32, 32, 3)


def test_nothing_is_written_through_symlinks(ckpts, tmp_path):
    out, outside = tmp_path / 'gen', tmp_path / 'precious.txt'
    outside.write_text('keep me')
    out.mkdir()
    for name, extra in (('grid.png', []), ('generation.json', ['--overwrite']), ('000001.png', []),
                        ('samples.npz', ['--npz'])):
        os.symlink(outside, out / name)
        with pytest.raises(SystemExit, match=f'{name} is a symbolic link.*nothing is written through links'):
            run_generate(ckpts[0], out, '--num-images', '2', *extra)
        assert outside.read_text() == 'keep me'
        os.unlink(out / name)
    assert pngs(out) == []  # refused before any image was made


def test_other_seed_settings_or_checkpoint_content_are_refused(ckpts, tmp_path):
    out = tmp_path / 'gen'
    ckpt = str(tmp_path / 'model.pth')
    with open(ckpts[0], 'rb') as src, open(ckpt, 'wb') as dst:
        dst.write(src.read())
    run_generate(ckpt, out, '--num-images', '4', '--grid', '0')
    with pytest.raises(SystemExit, match=r'other settings \(seed differ'):
        run_generate(ckpt, out, '--num-images', '4', '--seed', '7')
    with pytest.raises(SystemExit, match='choice_temperature|decoding'):
        run_generate(ckpt, out, '--num-images', '4', '--choice-temperature', '1.0')
    # another model's weights at the same path: the content hash differs, the path does not
    with open(ckpts[1], 'rb') as src, open(ckpt, 'wb') as dst:
        dst.write(src.read())
    with pytest.raises(SystemExit, match=r'other settings \(checkpoint_sha256 differ'):
        run_generate(ckpt, out, '--num-images', '4')
    # --overwrite with other settings starts afresh: the 4 old images do not stay beside 2 new ones
    run_generate(ckpt, out, '--num-images', '2', '--grid', '0', '--overwrite')
    assert pngs(out) == ['000000.png', '000001.png']
    fresh = tmp_path / 'fresh'
    run_generate(ckpts[1], fresh, '--num-images', '2', '--grid', '0')
    assert all(np.array_equal(pixels(out, n), pixels(fresh, n)) for n in pngs(out))


def test_a_concurrent_run_is_refused_and_temporaries_are_cleaned(ckpts, tmp_path):
    out = tmp_path / 'gen'
    out.mkdir()
    lock = generate.FolderLock(str(out))
    lock.acquire()  # another run holds the folder
    try:
        with pytest.raises(SystemExit, match=f'being written by another tools/generate.py run .*{os.getpid()}'):
            run_generate(ckpts[0], out, '--num-images', '2')
    finally:
        lock.release()
    assert pngs(out) == []
    stale = ['000000.png.tmp99999999.png', 'samples.npz.tmp99999999', '.000001.tmp-99999999-0123abcd.png']
    for name in stale:
        (out / name).write_bytes(b'half')
    run_generate(ckpts[0], out, '--num-images', '2', '--grid', '0')
    assert not [n for n in os.listdir(out) if n in stale or '.tmp' in n]
    assert pngs(out) == ['000000.png', '000001.png']


@pytest.mark.integration
def test_sigkill_mid_run_then_rerun_completes_the_folder(ckpts, tmp_path):
    """kill -9 while images are being written: the rerun leaves exactly the images of an uninterrupted run."""
    out, ref = tmp_path / 'killed', tmp_path / 'ref'
    n = 24
    cmd = [sys.executable, osp.join(ROOT, 'tools', 'generate.py'), TINY_GEN_CFG, ckpts[0], '--out-dir', str(out),
           '--no-progress', '--batch-size', '1', '--num-iter', '2', '--num-images', str(n), '--grid', '0']
    proc = subprocess.Popen(cmd, cwd=ROOT, env=dict(os.environ, OMP_NUM_THREADS='1'), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not (out.is_dir() and len(pngs(out)) >= 3):
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(pngs(out)) < n
    run_generate(ckpts[0], out, '--batch-size', '1', '--num-images', str(n), '--grid', '0')
    run_generate(ckpts[0], ref, '--batch-size', '1', '--num-images', str(n), '--grid', '0')
    assert pngs(out) == pngs(ref) == [f'{i:06d}.png' for i in range(n)]
    assert all(np.array_equal(pixels(out, k), pixels(ref, k)) for k in pngs(ref))
    assert not [k for k in os.listdir(out) if '.tmp' in k]
