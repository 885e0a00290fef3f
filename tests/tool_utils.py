"""Run ``tools/`` scripts from tests: as a module in this process (:func:`load_tool`) or as a subprocess
(:func:`run_checked`)."""
import importlib.util
import os
import os.path as osp
import subprocess
import sys
from types import ModuleType
from typing import Dict, Optional, Sequence

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def load_tool(name: str) -> ModuleType:
    """``tools/<name>.py`` as a module (``name`` like ``'generate'`` or ``'dataset_converters/prepare_fashion_mnist'``).

    Each call executes the file afresh under the module name ``mage_mm_tools_<name>`` (registered in
    ``sys.modules`` so that dataclasses and pickling inside the tool resolve their module).
    """
    path = osp.join(REPO_ROOT, 'tools', f'{name}.py')
    if not osp.isfile(path):
        raise FileNotFoundError(f'no tool script {path}')
    mod_name = 'mage_mm_tools_' + name.replace('/', '_')
    spec = importlib.util.spec_from_file_location(mod_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    spec.loader.exec_module(module)
    return module


def run_checked(cmd: Sequence[str], env: Optional[Dict[str, str]] = None, timeout: int = 600,
                cwd: str = REPO_ROOT) -> str:
    """Run ``cmd`` in the repository (``PYTHONPATH`` = the repo, one torch thread); return stdout + stderr.

    Fails the test with the command and the tail of both streams when the exit status is not 0.
    """
    full_env = {**os.environ, 'PYTHONPATH': REPO_ROOT, 'OMP_NUM_THREADS': '1', **(env or {})}
    res = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, env=full_env, timeout=timeout)
    assert res.returncode == 0, f'{cmd}\nSTDOUT:\n{res.stdout[-4000:]}\nSTDERR:\n{res.stderr[-4000:]}'
    return res.stdout + res.stderr
