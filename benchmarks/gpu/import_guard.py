"""Run a Python script seeing only what the lent GPU machine will have.

    python benchmarks/gpu/import_guard.py [--report FILE] -- SCRIPT [ARGS...]

Importable top-level packages: the standard library (minus modules Python 3.12 removed), the device
image's packages (``image_packages.txt``, from ``/work/.library/device/KINDS.md``), the wheels of
``wheels.txt`` and this repository's own code. Everything else is hidden: it is not found (``import``
raises ``ModuleNotFoundError``, ``importlib.util.find_spec`` gives None, ``importlib.metadata`` does
not list it), as on the device, so optional imports and availability probes behave as they would
there. ``mmcv._ext`` is hidden too: the carried mmcv is built without its compiled ops.
``--report`` (JSON, written at exit) lists the hidden names that were asked for (``refused``) and
the top-level modules that were loaded (``imported``).

Import names come from each installed distribution's metadata where it is installed here, else from
the table below, else from the distribution name with ``-`` → ``_``.
"""
import argparse
import atexit
import importlib.abc
import importlib.metadata as md
import json
import os.path as osp
import re
import runpy
import sys
from typing import Any, Iterable, List, Set

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(osp.dirname(HERE))
# distributions whose import names differ from their names (and are not installed here to ask)
IMPORT_NAMES = {
    'opencv-python-headless': ['cv2'], 'opencv-python': ['cv2'], 'pillow': ['PIL'], 'pyyaml': ['yaml', '_yaml'],
    'python-dateutil': ['dateutil'], 'scikit-image': ['skimage'], 'scikit-learn': ['sklearn'],
    'typing-extensions': ['typing_extensions'], 'protobuf': ['google'], 'attrs': ['attr', 'attrs'],
    'markdown-it-py': ['markdown_it'], 'py-cpuinfo': ['cpuinfo'], 'nvidia-ml-py': ['pynvml'],
    'setuptools': ['setuptools', 'pkg_resources', '_distutils_hack', 'distutils'], 'huggingface-hub':
    ['huggingface_hub'], 'pyre-extensions': ['pyre_extensions'], 'cuda-bindings': ['cuda'], 'cuda-core': ['cuda'],
    'cuda-pathfinder': ['cuda'], 'cupy-cuda13x': ['cupy', 'cupyx', 'cupy_backends'], 'tensorboard-data-server':
    ['tensorboard_data_server'], 'absl-py': ['absl'], 'opt-einsum': ['opt_einsum'], 'nvidia-cudnn-cu13': ['nvidia'],
    'jax-cuda13-pjrt': ['jax_plugins'], 'jax-cuda13-plugin': ['jax_cuda13_plugin', 'jax_plugins'],
    'mmcv-lite': ['mmcv'],  # mmcv without compiled ops (wheels.txt)
}
REMOVED_IN_PY312 = {'imp', 'asynchat', 'asyncore', 'smtpd'}
LOCAL = {'mage_mm', 'flops', 'bench_gpu', 'import_guard', 'parity_utils', 'mage_mm_parity_utils', '__main__'}


def read_names(path: str) -> List[str]:
    """Distribution names of a list file: one per line, ``name==version`` or ``name``, ``#`` comments."""
    names = []
    with open(path) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if line:
                names.append(re.split(r'[=<>!~ ]', line, 1)[0].strip().lower())
    return names


def import_names(dist: str) -> Set[str]:
    """Top-level import names of a distribution."""
    key = dist.lower().replace('_', '-')
    if key in IMPORT_NAMES:
        return set(IMPORT_NAMES[key])
    try:
        d = md.distribution(key)
    except md.PackageNotFoundError:
        return {key.replace('-', '_').replace('.', '_')}
    top = d.read_text('top_level.txt')
    if top:
        return {n.strip() for n in top.split() if n.strip()}
    names = set()
    for f in d.files or []:
        first = f.parts[0]
        if first.endswith(('.dist-info', '.egg-info', '.pth')) or first == '..' or first == '__pycache__':
            continue
        names.add(first[:-3] if first.endswith('.py') else first.split('.')[0])
    return names or {key.replace('-', '_')}


def allowed_names(lists: Iterable[str]) -> Set[str]:
    allowed = (set(sys.stdlib_module_names) | set(sys.builtin_module_names) | LOCAL) - REMOVED_IN_PY312
    for path in lists:
        for dist in read_names(path):
            allowed |= import_names(dist)
    return allowed


class DeviceImportGuard(importlib.abc.MetaPathFinder):
    """Sole meta-path finder: delegates allowed names to the finders it replaced, finds nothing else.

    Hidden names are "not found" (``find_spec`` gives None, ``import`` raises ``ModuleNotFoundError``),
    exactly as for a package that is not installed, so availability probes behave as on the device.
    """

    def __init__(self, allowed: Set[str], distributions: Set[str], finders: List[Any],
                 hidden: Iterable[str] = ('mmcv._ext', )) -> None:
        self.allowed, self.hidden, self.finders = set(allowed), set(hidden), list(finders)
        self.distributions = {d.lower().replace('_', '-') for d in distributions}
        self.refused: Set[str] = set()

    def _adopt(self) -> None:
        # finders added to sys.meta_path later (importlib_metadata appends its own on import) go behind the guard
        if len(sys.meta_path) != 1 or sys.meta_path[0] is not self:
            self.finders += [f for f in sys.meta_path if f is not self and f not in self.finders]
            sys.meta_path[:] = [self]

    def find_spec(self, name, path=None, target=None):
        self._adopt()
        top = name.split('.')[0]
        if name in self.hidden or (top not in self.allowed and not top.startswith('_sysconfigdata')):
            self.refused.add(name)
            return None
        for finder in self.finders:
            find = getattr(finder, 'find_spec', None)
            spec = find(name, path, target) if find is not None else None
            if spec is not None:
                return spec
        return None

    def find_distributions(self, context=None):
        """Installed-package metadata (``importlib.metadata``), for the listed distributions only."""
        context = context or md.DistributionFinder.Context()
        self._adopt()
        for finder in list(self.finders):
            find = getattr(finder, 'find_distributions', None)
            for dist in (find(context) if find is not None else ()):
                name = (dist.metadata['Name'] or '').lower().replace('_', '-')
                if name in self.distributions:
                    yield dist

    def invalidate_caches(self) -> None:
        for finder in self.finders:
            if hasattr(finder, 'invalidate_caches'):
                finder.invalidate_caches()


def install(lists: Iterable[str] = (osp.join(HERE, 'wheels.txt'), osp.join(HERE, 'image_packages.txt'))
            ) -> DeviceImportGuard:
    lists = list(lists)
    dists = {d for path in lists for d in read_names(path)}
    guard = DeviceImportGuard(allowed_names(lists), dists, sys.meta_path)
    sys.meta_path[:] = [guard]
    return guard


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--report', default=None, help='JSON file: refused (hidden) and imported top-level names')
    p.add_argument('script')
    p.add_argument('args', nargs=argparse.REMAINDER)
    args = p.parse_args()
    guard = install()
    if args.report:
        def report():
            imported = sorted({name.split('.')[0] for name in list(sys.modules)})
            with open(args.report, 'w') as f:
                json.dump(dict(refused=sorted(guard.refused), imported=imported), f)
        atexit.register(report)
    sys.argv = [args.script] + [a for a in args.args if a != '--']
    runpy.run_path(args.script, run_name='__main__')


if __name__ == '__main__':
    main()
