"""mage_mm.utils.atomic: old or new file after any failure, never through a symlink, stale temps removed."""
import os
import os.path as osp
import signal
import subprocess
import sys
import textwrap

import pytest

import mage_mm.utils.atomic as atomic_module
from mage_mm.utils.atomic import (
    SymlinkRefusedError,
    atomic_path,
    atomic_torch_save,
    atomic_write,
    check_no_symlinks,
    is_temp_name,
    remove_stale_temps,
    temp_name_for,
)

ATOMIC_FILE = atomic_module.__file__


def test_write_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / 'a.json'
    target.write_text('old')
    with atomic_write(target, 'w') as f:
        f.write('new')
        # the old file is still there while we write
        assert target.read_text() == 'old'
    assert target.read_text() == 'new'
    assert os.listdir(tmp_path) == ['a.json']


def test_exception_keeps_old_file_and_removes_temp(tmp_path):
    target = tmp_path / 'a.bin'
    target.write_bytes(b'old')
    with pytest.raises(RuntimeError, match='boom'):
        with atomic_write(target) as f:
            f.write(b'half')
            raise RuntimeError('boom')
    assert target.read_bytes() == b'old'
    assert os.listdir(tmp_path) == ['a.bin']


def test_check_failure_aborts(tmp_path):
    target = tmp_path / 'img.png'

    def check(tmp):
        assert tmp.endswith('.png') and osp.dirname(tmp) == str(tmp_path)
        raise ValueError('not an image')

    with pytest.raises(ValueError, match='not an image'):
        with atomic_path(target, check=check) as tmp:
            open(tmp, 'wb').write(b'x')
    assert not target.exists() and os.listdir(tmp_path) == []


def test_atomic_path_keeps_suffix_for_numpy(tmp_path):
    import numpy as np
    target = tmp_path / 'samples.npz'
    with atomic_path(target) as tmp:
        np.savez(tmp, x=np.arange(3))  # would append .npz if the suffix were missing
    assert np.load(target)['x'].tolist() == [0, 1, 2]
    assert os.listdir(tmp_path) == ['samples.npz']


def test_atomic_path_without_output_is_error(tmp_path):
    with pytest.raises(FileNotFoundError, match='produced no file'):
        with atomic_path(tmp_path / 'x.png'):
            pass


def test_refuses_symlink_target(tmp_path):
    outside = tmp_path / 'outside.txt'
    outside.write_text('precious')
    folder = tmp_path / 'out'
    folder.mkdir()
    (folder / 'grid.png').symlink_to(outside)
    with pytest.raises(SymlinkRefusedError, match='grid.png'):
        with atomic_write(folder / 'grid.png') as f:
            f.write(b'x')
    assert outside.read_text() == 'precious'
    assert sorted(os.listdir(folder)) == ['grid.png']


def test_refuses_symlinked_folder_under_root(tmp_path):
    real = tmp_path / 'elsewhere'
    real.mkdir()
    root = tmp_path / 'out'
    root.mkdir()
    (root / 'sub').symlink_to(real, target_is_directory=True)
    with pytest.raises(SymlinkRefusedError, match='sub'):
        atomic_torch_save({'a': 1}, root / 'sub' / 'x.pth', root=root)
    assert os.listdir(real) == []
    with pytest.raises(ValueError, match='outside the output folder'):
        check_no_symlinks(tmp_path / 'x.pth', root=root)


def test_torch_save_roundtrip(tmp_path):
    import torch
    target = tmp_path / 'iter_1.pth'
    atomic_torch_save({'w': torch.ones(2)}, target)
    assert torch.load(target, weights_only=True)['w'].tolist() == [1.0, 1.0]


def test_remove_stale_temps_only_dead_writers(tmp_path):
    dead = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    stale = temp_name_for(tmp_path / 'iter_3.pth', pid=dead_pid)
    live = temp_name_for(tmp_path / 'iter_4.pth')  # this process: alive
    other = temp_name_for(tmp_path / 'grid.png', pid=dead_pid)
    for p in (stale, live, other):
        open(p, 'wb').close()
    (tmp_path / 'iter_2.pth').write_bytes(b'keep')
    assert all(is_temp_name(p) for p in (stale, live, other)) and not is_temp_name('iter_2.pth')
    assert remove_stale_temps(tmp_path, target=tmp_path / 'iter_3.pth') == [stale]
    assert remove_stale_temps(tmp_path) == [other]
    assert sorted(os.listdir(tmp_path)) == sorted(['iter_2.pth', osp.basename(live)])
    # an old temp of a live pid goes when max_age_s says so
    os.utime(live, (0, 0))
    assert remove_stale_temps(tmp_path, max_age_s=60) == [live]


def test_sigkill_during_write_leaves_old_file(tmp_path):
    """A writer killed in the middle of a (slow) write leaves the old file intact and a stale temp."""
    target = tmp_path / 'ckpt.bin'
    target.write_bytes(b'old')
    script = textwrap.dedent(f"""
        import sys, time
        import importlib.util
        # load the module alone: importing the mage_mm package would take seconds
        spec = importlib.util.spec_from_file_location('atomic', {ATOMIC_FILE!r})
        atomic = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(atomic)
        atomic_write = atomic.atomic_write
        with atomic_write({str(target)!r}) as f:
            f.write(b'half')
            f.flush()
            print('writing', flush=True)
            time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, '-c', script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == 'writing'
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert target.read_bytes() == b'old'
    leftovers = [n for n in os.listdir(tmp_path) if n != 'ckpt.bin']
    assert len(leftovers) == 1 and is_temp_name(leftovers[0])
    assert remove_stale_temps(tmp_path) == [str(tmp_path / leftovers[0])]
    assert os.listdir(tmp_path) == ['ckpt.bin']
