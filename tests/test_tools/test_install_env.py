"""tools/install_env.sh --dry-run: the resolved plan for the CPU and the CUDA recipe, checked at the shell level.

Nothing is installed and nothing here pretends to test CUDA: the dry run prints the pip commands and the mmcv
ops decision that a real run would execute, and the tests check that the README's CUDA recipe resolves to the
same pins as the CPU stack, that every install step applies requirements/constraints.txt, and that bad
arguments are refused. A CUDA install itself is untested in this project (no GPU machine to run it on).
"""
import os
import os.path as osp
import re
import shutil
import subprocess
from typing import Dict, List, Optional

import pytest
from packaging.requirements import Requirement
from packaging.version import Version
from tool_utils import REPO_ROOT

SCRIPT = osp.join(REPO_ROOT, 'tools', 'install_env.sh')
CONSTRAINTS = osp.join(REPO_ROOT, 'requirements', 'constraints.txt')
pytestmark = pytest.mark.integration  # runs the script (a dry run: about 0.1 s each)


def pins() -> Dict[str, str]:
    out = {}
    with open(CONSTRAINTS) as f:
        for line in f:
            m = re.match(r'^([A-Za-z0-9_.\-]+)==([^\s#;]+)', line)
            if m:
                out[m.group(1).lower()] = m.group(2)
    return out


def dry_run(env: Optional[Dict[str, str]] = None, venv: str = '/nonexistent/venv') -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k not in ('TORCH_SPEC', 'TORCH_INDEX', 'NVCC', 'CUDA_HOME')}
    full.update(env or {})
    return subprocess.run(['bash', SCRIPT, '--dry-run', venv], capture_output=True, text=True, env=full, timeout=60)


def commands(res: subprocess.CompletedProcess) -> List[str]:
    assert res.returncode == 0, res.stdout + res.stderr
    return [line[2:] for line in res.stdout.splitlines() if line.startswith('+ ')]


def pip_installs(cmds: List[str]) -> List[str]:
    return [c for c in cmds if ' -m pip ' in c and ' install ' in c]


def test_cpu_plan_pins_everything_and_changes_nothing(tmp_path):
    venv = str(tmp_path / 'venv')
    cmds = commands(dry_run(venv=venv))
    assert not osp.exists(venv)  # a dry run creates nothing
    p = pins()
    assert f"torch=={p['torch']} torchvision=={p['torchvision']}" in cmds[0] and '--extra-index-url' not in cmds[0]
    installs = pip_installs(cmds)
    assert len(installs) >= 8
    for cmd in installs:
        if cmd.endswith(f'-e {REPO_ROOT}'):
            assert '--no-deps' in cmd  # mage_mm itself: the stack above is its dependency set
        else:
            assert f'-c {CONSTRAINTS}' in cmd, cmd
    assert any(f'mmengine=={p["mmengine"]}' in c for c in installs)
    assert any('startup_hook.py --install' in c for c in cmds)
    (build, ) = [c for c in cmds if ' -q wheel ' in c]
    assert 'FORCE_CUDA=0' in build and f'mmcv=={p["mmcv"]}' in build


def readme_cuda_recipe() -> str:
    with open(osp.join(REPO_ROOT, 'README.md'), encoding='utf-8') as f:
        text = f.read()
    recipes = re.findall(r'^(TORCH_INDEX=\S+(?: TORCH_SPEC="[^"]*")?) (?:make venv|bash tools/install_env\.sh)',
                         text, flags=re.M)
    assert recipes, 'README gives no TORCH_INDEX=... make venv recipe'
    return recipes[0]


def recipe_env(recipe: str) -> Dict[str, str]:
    return {k: v.strip('"') for k, v in re.findall(r'(\w+)=("[^"]*"|\S+)', recipe)}


@pytest.mark.parametrize('nvcc', ['none', 'found'])
def test_readme_cuda_recipe_resolves_to_the_cpu_pins(nvcc):
    env = recipe_env(readme_cuda_recipe())
    assert re.match(r'https://download\.pytorch\.org/whl/cu1\d\d$', env['TORCH_INDEX']), env
    if nvcc == 'none':
        env['NVCC'] = ''
    else:
        found = shutil.which('nvcc') or next((c for c in ('/usr/local/cuda/bin/nvcc', ) if osp.isfile(c)), None)
        if found is None:
            pytest.skip('no nvcc on this machine: the CUDA-ops branch of the plan cannot be resolved')
        env['NVCC'] = found
    cmds = commands(dry_run(env))
    p = pins()
    torch_line = cmds[0]
    assert f'--extra-index-url {env["TORCH_INDEX"]}' in torch_line and f'-c {CONSTRAINTS}' in torch_line
    wanted = env.get('TORCH_SPEC', f"torch=={p['torch']} torchvision=={p['torchvision']}").split()
    for req in wanted:  # the same public versions as the CPU stack (a +cuXXX label may be added)
        r = Requirement(req)
        (spec, ) = r.specifier
        assert Version(spec.version).public == p[r.name], req
        assert req in torch_line
    # every later step is the CPU plan's, command for command (only the mmcv wheel's cache folder differs)
    cpu_env = {k: v for k, v in env.items() if k not in ('TORCH_INDEX', 'TORCH_SPEC')}
    later = [[c for c in pip_installs(plan)[1:] if 'mmcv-' not in c] for plan in (cmds, commands(dry_run(cpu_env)))]
    assert later[0] == later[1] and len(later[0]) >= 7
    (build, ) = [c for c in cmds if ' -q wheel ' in c]
    if nvcc == 'none':
        assert 'FORCE_CUDA=0' in build and 'CUDA_VISIBLE_DEVICES=' in build  # CPU ops, GPUs hidden from setup.py
    else:
        assert 'FORCE_CUDA=1' in build and re.search(r'CUDA_HOME=\S+', build)


@pytest.mark.parametrize('spec, message', [
    ('torch==2.1.2', 'pins torch=='),  # another version than the measured stack
    ('torch>=2.6', 'must be name==version'),
    ('torch==2.13.0 numpy==2.4.6', 'names only torch and torchvision'),
])
def test_inconsistent_torch_spec_is_refused(spec, message):
    res = dry_run({'TORCH_SPEC': spec})
    assert res.returncode == 2 and message in res.stderr, res.stdout + res.stderr


def test_local_build_label_is_accepted():
    p = pins()
    spec = f"torch=={p['torch']}+cu128 torchvision=={p['torchvision']}+cu128"
    cmds = commands(dry_run({'TORCH_SPEC': spec, 'TORCH_INDEX': 'https://download.pytorch.org/whl/cu128',
                             'NVCC': ''}))
    assert spec in cmds[0]


def test_constraints_satisfy_the_declared_ranges():
    """setup.py's ranges (requirements/*.txt) admit the measured pins, so the two cannot disagree."""
    p = pins()
    for name in ('runtime', 'detection', 'generation', 'tests', 'lint', 'mim'):
        with open(osp.join(REPO_ROOT, 'requirements', f'{name}.txt')) as f:
            for line in f:
                line = line.split('#', 1)[0].strip()
                if not line:
                    continue
                req = Requirement(line)
                key = req.name.lower()
                assert key in p or key.replace('_', '-') in p, f'{name}.txt: {req.name} has no pin in constraints.txt'
                pinned = p.get(key, p.get(key.replace('_', '-')))
                assert req.specifier.contains(pinned, prereleases=True), f'{name}.txt: {req} vs pin {pinned}'
