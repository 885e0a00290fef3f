"""Venv startup hook: two import-time incompatibilities of the stack that no config can reach in time.

OpenMMLab's own ``tools/train.py``/``tools/test.py`` (and ``mim``) import torchvision and mmagic at their
top, long before a config's ``custom_imports`` run, so these two fixes live in the environment that
``tools/install_env.sh`` builds, not in ``mage_mm``. Each one is lazy (it runs only when the library it
fixes is first imported), gated, and does nothing where it is not needed:

1. **torchvision op schemas** (upstream https://github.com/pytorch/vision/issues/9085 and /issues/9077).
   PyPI has no torchvision sdist and no CPU wheel; its wheel is a CUDA build whose ``_C.so`` does not load
   beside a CPU build of torch. torchvision then skips its ops but still calls
   ``torch.library.register_fake('torchvision::nms')`` at import, which raises
   ``RuntimeError: operator torchvision::nms does not exist``. Gate: torchvision's ``_C`` library really
   fails to load (tried exactly as ``torchvision.extension`` does). Fix: define the two schemas it
   registers fake kernels for (``nms``, ``qnms``). The ops still have no kernel, so
   ``torchvision.ops.nms`` raises as it would without the hook; mmdet uses ``mmcv.ops.nms``. With a
   matching torchvision (e.g. a CUDA torch) the ops load and the hook defines nothing.
2. **numpy.bool8 for mmagic** (numpy 2.0 removed the ``np.bool8`` alias, NEP 52; mmagic 1.2.0, its last
   release, still reads it at import in ``mmagic/utils/trans_utils.py``: ``dtype_range``).
   Gate: numpy >= 2 lacks ``bool8`` and the installed mmagic is <= 1.2.0. Fix: ``np.bool8 = np.bool_``
   (what numpy 1.x defined it as), set right before mmagic is first imported.

How: ``tools/install_env.sh`` copies this file into the venv's site-packages as ``_mage_mm_env_hook.py``
next to ``mage_mm_env_hook.pth`` (one line, ``import _mage_mm_env_hook``), which Python's ``site`` module
runs at every interpreter start of that venv. At start the hook only inserts a finder into
``sys.meta_path`` (no torch or numpy import; well under a millisecond). The finder never imports anything
itself: it runs the fix for a library when that library's import begins, then steps aside.

Install into another environment: ``python tools/env/startup_hook.py --install``; ``--status`` prints
what each fix would do in the current interpreter.
"""
import importlib.abc
import importlib.util
import os
import os.path as osp
import sys
from typing import Any, Callable, Dict, Optional, Sequence

MODULE_NAME = '_mage_mm_env_hook'
PTH_NAME = 'mage_mm_env_hook.pth'
#: Ops whose fake kernels torchvision registers unconditionally at import (torchvision/_meta_registrations.py).
TORCHVISION_SCHEMAS = (
    'nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor',
    'qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor',
)
#: Last mmagic release that reads ``np.bool8`` at import.
MMAGIC_BOOL8_LAST = '1.2.0'

#: What each fix did in this process: 'not triggered' until the library is imported, then a short verdict.
STATE: Dict[str, str] = {'torchvision': 'not triggered', 'mmagic': 'not triggered'}
_TORCHVISION_LIB: Any = None  # keeps the torch.library registration alive


def torchvision_ops_load() -> bool:
    """Load torchvision's compiled ops the way ``torchvision.extension`` does; True when they load.

    Also True when torchvision is absent or its ops are registered already: then nothing needs fixing.
    """
    import torch
    try:
        torch.ops.torchvision.nms  # registered already (loaded, or defined by an earlier call)
        return True
    except (AttributeError, RuntimeError):
        pass
    spec = importlib.util.find_spec('torchvision')
    if spec is None or not spec.submodule_search_locations:
        return True
    pkg_dir = list(spec.submodule_search_locations)[0]
    libs = sorted(f for f in os.listdir(pkg_dir) if f.startswith('_C.') and f.endswith(('.so', '.pyd')))
    if not libs:
        return False
    try:
        torch.ops.load_library(osp.join(pkg_dir, libs[0]))
        return True
    except OSError:
        return False


def fix_torchvision() -> str:
    """Define torchvision's two op schemas if its ops cannot load; return the verdict."""
    global _TORCHVISION_LIB
    if _TORCHVISION_LIB is not None:
        return 'schemas defined'
    if importlib.util.find_spec('torchvision') is None:
        return 'not installed'
    if torchvision_ops_load():
        return 'ops load: nothing to do'
    import torch
    lib = torch.library.Library('torchvision', 'DEF')
    for schema in TORCHVISION_SCHEMAS:
        lib.define(schema)
    _TORCHVISION_LIB = lib
    return 'schemas defined'


def needs_numpy_bool8(numpy_version: str, mmagic_version: Optional[str], numpy_has_bool8: bool) -> bool:
    """The gate of fix 2: numpy >= 2 without ``bool8`` and an mmagic <= 1.2.0 that reads it.

    Args:
        numpy_version (str): Installed numpy version, e.g. ``'2.4.6'``.
        mmagic_version (str, optional): Installed mmagic version; None when mmagic is absent.
        numpy_has_bool8 (bool): Whether ``numpy.bool8`` exists.
    """
    from packaging.version import Version
    if numpy_has_bool8 or mmagic_version is None:
        return False
    return Version(numpy_version) >= Version('2.0') and Version(mmagic_version) <= Version(MMAGIC_BOOL8_LAST)


def fix_mmagic() -> str:
    """Set ``numpy.bool8 = numpy.bool_`` when :func:`needs_numpy_bool8` says so; return the verdict."""
    from importlib.metadata import PackageNotFoundError, version

    import numpy as np
    try:
        mmagic_version: Optional[str] = version('mmagic')
    except PackageNotFoundError:
        mmagic_version = None
    if not needs_numpy_bool8(np.__version__, mmagic_version, hasattr(np, 'bool8')):
        return 'not needed'
    np.bool8 = np.bool_
    return 'numpy.bool8 set'


FIXES: Dict[str, Callable[[], str]] = {'torchvision': fix_torchvision, 'mmagic': fix_mmagic}


class _EnvHookFinder(importlib.abc.MetaPathFinder):
    """Runs the fix of a library once, when its import begins; finds nothing itself."""

    def find_spec(self, fullname: str, path: Optional[Sequence[str]], target: Any = None) -> None:
        if fullname in FIXES and STATE[fullname] == 'not triggered':
            STATE[fullname] = 'running'
            try:
                STATE[fullname] = FIXES[fullname]()
            except Exception as err:  # a startup hook must never break an import; the library reports its own
                STATE[fullname] = f'error: {type(err).__name__}: {err}'
            if all(v != 'not triggered' for v in STATE.values()) and self in sys.meta_path:
                sys.meta_path.remove(self)
        return None  # the regular finders import the library


def register() -> None:
    """Arm the hook (run by the ``.pth`` line at interpreter start; idempotent)."""
    if not any(isinstance(f, _EnvHookFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _EnvHookFinder())


def install(site_dir: str) -> None:
    """Copy this file and its ``.pth`` line into ``site_dir`` (a site-packages folder), atomically."""
    with open(__file__, encoding='utf-8') as f:
        source = f.read()
    for name, text in ((MODULE_NAME + '.py', source), (PTH_NAME, f'import {MODULE_NAME}\n')):
        dst = osp.join(site_dir, name)
        tmp = f'{dst}.tmp{os.getpid()}'
        with open(tmp, 'w', encoding='utf-8') as f:
            f.write(text)
        os.replace(tmp, dst)
    print(f'installed {MODULE_NAME}.py and {PTH_NAME} into {site_dir}')


if __name__ == '__main__':
    import argparse
    import sysconfig

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--install', action='store_true', help="install into this interpreter's site-packages")
    parser.add_argument('--site-dir', default=sysconfig.get_paths()['purelib'], help='target of --install')
    parser.add_argument('--status', action='store_true', help='print what each fix does in this interpreter')
    args = parser.parse_args()
    if args.install:
        install(args.site_dir)
    if args.status or not args.install:
        hook = sys.modules.get(MODULE_NAME)
        print(f'{MODULE_NAME} armed at startup: {hook is not None}')
        if hook is None:  # not installed in this interpreter: say what the fixes would do
            print('\n'.join(f'  {name}: would give {fix()!r}' for name, fix in FIXES.items()))
        else:
            for name in FIXES:
                if importlib.util.find_spec(name) is not None:
                    __import__(name)
            print('\n'.join(f'  {name}: {state}' for name, state in hook.STATE.items()))
elif __name__ == MODULE_NAME:  # imported by the .pth line; importing tools/env/... by path arms nothing
    register()
