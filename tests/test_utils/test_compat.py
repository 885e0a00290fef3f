"""mage_mm.compat: each shim on both sides of its version gate, and nothing applied by ``import mage_mm`` alone.

With the installed stack (torch 2.13, mmengine 0.10.7, CPU) both gates are open, so the shims are installed in
this process (tests/conftest.py imports mage_mm.compat, as every config's custom_imports does). The closed side
of each gate is checked on the gate function with the version strings that close it, and upstream behaviour
is checked on mmengine's own function (kept in ``compat.ORIGINALS``) and in a fresh interpreter.
"""
import multiprocessing
import os
import pickle
import socket
import subprocess
import sys

import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint

import mage_mm.compat as compat


def runner_style_checkpoint(path) -> str:
    """What mmengine's Runner saves besides tensors: a message hub with HistoryBuffers and numpy arrays."""
    hub = MessageHub.get_instance('mage_mm_compat_test')
    hub.update_scalar('train/loss', 1.5)
    hub.update_scalar('train/loss', 0.5)
    torch.save({'meta': {'iter': 2}, 'state_dict': {'w': torch.ones(2)}, 'message_hub': hub.state_dict()}, path)
    return str(path)


# ---- shim 1: safe_checkpoint_loader ------------------------------------------------------------------------

@pytest.mark.parametrize('torch_version, mmengine_version, needed', [
    ('2.13.0+cpu', '0.10.7', True),
    ('2.6.0', '0.10.7', True),
    ('2.6.0+cu124', '0.9.1', True),
    ('2.5.1', '0.10.7', False),  # weights_only=False was still the default: mmengine's loader works
    ('2.13.0', '0.10.8', False),  # a later mmengine: not known to need it
    ('2.13.0', None, False),  # no mmengine
])
def test_safe_loader_gate(torch_version, mmengine_version, needed):
    assert compat.safe_loader_needed(torch_version, mmengine_version) is needed


def test_safe_loader_shim_loads_runner_checkpoints_that_upstream_refuses(tmp_path):
    assert compat.APPLIED['safe_checkpoint_loader'] is compat.safe_loader_needed(
        torch.__version__, compat.installed_version('mmengine')) is True
    path = runner_style_checkpoint(tmp_path / 'iter_2.pth')
    upstream = compat.ORIGINALS['safe_checkpoint_loader']
    assert upstream.__module__ == 'mmengine.runner.checkpoint'
    with pytest.raises(pickle.UnpicklingError, match='Weights only load failed'):
        upstream(path, 'cpu')  # the problem the shim exists for (torch>=2.6 + mmengine 0.10.7)
    assert CheckpointLoader._schemes[''] is not upstream
    buf = _load_checkpoint(path, map_location='cpu')['message_hub']['log_scalars']['train/loss']
    assert isinstance(buf, HistoryBuffer) and buf.mean() == 1.0 and buf.current() == 0.5


def test_safe_loader_shim_leaves_other_schemes_to_mmengine():
    for prefix in ('http://', 'https://', 's3://', 'open-mmlab://'):
        if prefix in CheckpointLoader._schemes:
            assert CheckpointLoader._schemes[prefix].__module__ == 'mmengine.runner.checkpoint', prefix


def test_history_buffer_is_upstream():
    """No shim touches HistoryBuffer: it pickles its statistics methods exactly as mmengine does."""
    assert HistoryBuffer.__getstate__.__module__ == 'mmengine.logging.history_buffer'
    buf = HistoryBuffer()
    buf.update(2.0)
    assert 'statistics_methods' in buf.__getstate__()


# ---- shim 2: cpu_distributed_init ----------------------------------------------------------------------------

@pytest.mark.parametrize('mmengine_version, cuda, needed', [
    ('0.10.7', False, True),
    ('0.8.0', False, True),
    ('0.10.7', True, False),  # a GPU: torch.cuda.set_device works, mmengine's code is right
    ('0.11.0', False, False),  # a later mmengine: not known to need it
    (None, False, False),
])
def test_cpu_dist_init_gate(mmengine_version, cuda, needed):
    assert compat.cpu_dist_init_needed(mmengine_version, cuda) is needed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason='the gate is closed on a machine with a CUDA device')
def test_cpu_dist_init_shim_runs_gloo_where_upstream_fails(monkeypatch):
    import mmengine.dist.utils as dist_utils
    import torch.distributed as torch_dist
    from mmengine.dist import init_dist

    assert compat.APPLIED['cpu_distributed_init'] is True
    upstream = compat.ORIGINALS['cpu_distributed_init']
    assert upstream.__module__ == 'mmengine.dist.utils' and dist_utils._init_dist_pytorch is not upstream
    for key, value in dict(RANK='0', LOCAL_RANK='0', WORLD_SIZE='1', MASTER_ADDR='127.0.0.1',
                           MASTER_PORT=str(free_port())).items():
        monkeypatch.setenv(key, value)
    with pytest.raises((AttributeError, RuntimeError)):
        upstream('gloo')  # torch.cuda.set_device on a CPU build of torch
    assert not torch_dist.is_initialized()
    with pytest.raises(type(_error_of(upstream, 'nccl'))):
        dist_utils._init_dist_pytorch('nccl')  # every other backend: mmengine's own code path, same error
    start_method = multiprocessing.get_start_method(allow_none=True)
    init_dist('pytorch', backend='gloo')  # the real entry point of --launcher pytorch
    try:
        assert torch_dist.is_initialized() and torch_dist.get_backend() == 'gloo'
        assert torch_dist.get_world_size() == 1
    finally:
        torch_dist.destroy_process_group()
        if start_method is None:  # init_dist sets 'spawn' for the whole process; give later tests the default
            multiprocessing.set_start_method(None, force=True)


def _error_of(fn, *args) -> BaseException:
    try:
        fn(*args)
    except BaseException as err:  # the error itself is the result
        return err
    raise AssertionError(f'{fn} did not raise')


# ---- applied only where asked for ----------------------------------------------------------------------------

@pytest.mark.integration
def test_import_mage_mm_alone_changes_no_other_library():
    """A fresh interpreter: ``import mage_mm`` leaves mmengine's loader, dist init and numpy as upstream."""
    code = '\n'.join([
        'import sys, numpy as np',
        'import mage_mm',
        'from mmengine.runner.checkpoint import CheckpointLoader',
        'import mmengine.dist.utils as d',
        'from mmengine.logging import HistoryBuffer',
        "print(CheckpointLoader._schemes[''].__module__, d._init_dist_pytorch.__module__,",
        "      HistoryBuffer.__getstate__.__module__, 'mage_mm.compat' in sys.modules, hasattr(np, 'bool8'),",
        "      hasattr(np, 'in1d'))",
    ])
    env = dict(os.environ, OMP_NUM_THREADS='1')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ['mmengine.runner.checkpoint', 'mmengine.dist.utils',
                                  'mmengine.logging.history_buffer', 'False', 'False', 'False']


def test_apply_is_idempotent_and_reports_every_shim():
    loader = CheckpointLoader._schemes['']
    assert compat.apply() is compat.APPLIED
    assert set(compat.APPLIED) == {'safe_checkpoint_loader', 'cpu_distributed_init'}
    assert CheckpointLoader._schemes[''] is loader  # not wrapped twice
