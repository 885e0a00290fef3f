"""The venv startup hook (tools/env/startup_hook.py): each fix on both sides of its gate, lazy, and installed.

"Without the hook" is a fresh interpreter started with ``-S`` (no ``site``, so no ``.pth`` file runs) and the
venv's site-packages put on ``sys.path`` by hand: the same packages, exactly as they are without the hook.
"""
import filecmp
import os
import os.path as osp
import subprocess
import sys
import sysconfig

import pytest
from tool_utils import REPO_ROOT, load_tool

SITE = sysconfig.get_paths()['purelib']
HOOK_SRC = osp.join(REPO_ROOT, 'tools', 'env', 'startup_hook.py')
hook = load_tool('env/startup_hook')


def python(code: str, with_hook: bool = True) -> subprocess.CompletedProcess:
    args = [sys.executable, '-c', code] if with_hook else [
        sys.executable, '-S', '-c', f'import sys; sys.path.append({SITE!r})\n{code}']
    env = dict(os.environ, OMP_NUM_THREADS='1')
    env.pop('PYTHONPATH', None)
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)


def test_installed_hook_is_this_file():
    installed = osp.join(SITE, hook.MODULE_NAME + '.py')
    assert osp.isfile(installed), 'no startup hook: run `make venv` or `python tools/env/startup_hook.py --install`'
    assert filecmp.cmp(installed, HOOK_SRC, shallow=False), f'{installed} is stale: rerun tools/install_env.sh'
    with open(osp.join(SITE, hook.PTH_NAME)) as f:
        assert f.read() == f'import {hook.MODULE_NAME}\n'


@pytest.mark.integration
def test_startup_imports_nothing_heavy():
    """At interpreter start the hook only arms a finder: no torch, numpy or torchvision import."""
    res = python("import sys; print(sorted(m for m in ('torch', 'numpy', 'torchvision', 'mmagic') if m in sys.modules),"
                 " '_mage_mm_env_hook' in sys.modules)")
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ['[]', 'True']


# ---- fix 1: torchvision op schemas ---------------------------------------------------------------------------

@pytest.mark.integration
def test_torchvision_imports_only_with_the_hook_when_its_ops_cannot_load():
    probe = python('import torch, _mage_mm_env_hook as h; print(h.torchvision_ops_load())')
    assert probe.returncode == 0, probe.stderr
    if probe.stdout.strip() == 'True':  # a torch that loads torchvision's ops (e.g. a CUDA build): gate closed
        res = python('import torchvision, _mage_mm_env_hook as h; print(h.STATE["torchvision"])')
        assert res.returncode == 0 and res.stdout.strip() == 'ops load: nothing to do', res.stdout + res.stderr
        return
    without = python('import torchvision', with_hook=False)
    assert without.returncode != 0 and 'operator torchvision::nms does not exist' in without.stderr
    res = python('\n'.join([
        'import torch, torchvision, torchvision.transforms, _mage_mm_env_hook as h',
        'print(h.STATE["torchvision"])',
        'from torchvision.ops import box_iou',  # the pure-Python parts work
        'print(float(box_iou(torch.tensor([[0., 0., 2., 2.]]), torch.tensor([[1., 1., 3., 3.]]))[0, 0]))',
        'try:',
        '    torchvision.ops.nms(torch.rand(3, 4), torch.rand(3), 0.5)',
        'except (RuntimeError, NotImplementedError) as err:',
        '    print("nms has no kernel")',
    ]))
    assert res.returncode == 0, res.stderr[-3000:]
    state, iou, nms = res.stdout.strip().splitlines()
    assert state == 'schemas defined' and abs(float(iou) - 1 / 7) < 1e-6 and nms == 'nms has no kernel'


# ---- fix 2: numpy.bool8 for mmagic ---------------------------------------------------------------------------

@pytest.mark.parametrize('numpy_version, mmagic_version, has_bool8, needed', [
    ('2.4.6', '1.2.0', False, True),
    ('2.0.0', '1.1.0', False, True),
    ('1.26.4', '1.2.0', True, False),  # numpy 1.x still has the alias
    ('2.4.6', '1.3.0', False, False),  # a later mmagic: not known to need it
    ('2.4.6', None, False, False),  # no mmagic
])
def test_numpy_bool8_gate(numpy_version, mmagic_version, has_bool8, needed):
    assert hook.needs_numpy_bool8(numpy_version, mmagic_version, has_bool8) is needed


@pytest.mark.integration
def test_mmagic_imports_only_with_the_hook_and_bool8_appears_only_with_mmagic():
    gate = python('import numpy as np, importlib.metadata as m, _mage_mm_env_hook as h\n'
                  'print(h.needs_numpy_bool8(np.__version__, m.version("mmagic"), hasattr(np, "bool8")))')
    assert gate.returncode == 0, gate.stderr
    if gate.stdout.strip() != 'True':
        pytest.skip(f'the installed numpy/mmagic need no alias (gate closed): {gate.stdout.strip()}')
    # without the hook but with fix 1 applied by hand (a copy of the hook's code that arms nothing)
    without = python('\n'.join([
        'import importlib.util as u',
        f'spec = u.spec_from_file_location("startup_hook_copy", {HOOK_SRC!r})',
        'h = u.module_from_spec(spec); spec.loader.exec_module(h); h.fix_torchvision()',
        'import mmagic.utils',
    ]), with_hook=False)
    assert without.returncode != 0 and "no attribute 'bool8'" in without.stderr, without.stderr[-3000:]
    res = python('\n'.join([
        'import numpy as np, _mage_mm_env_hook as h',
        'before = hasattr(np, "bool8")',  # lazy: numpy alone is left as it is
        'import mmagic.utils',
        'print(before, np.bool8 is np.bool_, h.STATE["mmagic"])',
    ]))
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.strip().splitlines()[-1] == 'False True numpy.bool8 set', res.stdout
