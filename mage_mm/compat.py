"""Compatibility shims for mmengine 0.10.7 on torch >= 2.6, applied only where asked for.

``import mage_mm`` applies nothing. The shims are applied by **importing this module** (or calling
:func:`apply`, which is idempotent): every mage_mm config lists ``'mage_mm.compat'`` first in
``custom_imports``, and mage_mm's ``tools/`` and ``tests/conftest.py`` import it, so OpenMMLab's own CLIs
(``mim``, mmpretrain/mmdet/mmagic ``tools/*.py``) get the same shims from the config as our tools do.
A program that only imports ``mage_mm`` keeps upstream behaviour.

Each shim has a pure gate function on library versions (tested on both sides with fake version strings)
and does nothing when its gate is closed. :data:`APPLIED` records what :func:`apply` did.

1. ``safe_checkpoint_loader`` (gate: torch >= 2.6 and mmengine <= 0.10.7). mmengine's local-file loader
   calls ``torch.load(filename, map_location)`` without ``weights_only``; torch 2.6 made
   ``weights_only=True`` the default, which refuses mmengine's own Runner checkpoints (``HistoryBuffer``,
   numpy arrays, ``getattr``), so ``resume``, ``load_from`` and ``init_cfg=Pretrained`` fail
   (https://github.com/open-mmlab/mmengine/issues/1655). Upstream's fix, PR #1670 (merged after the 0.10.7
   release), passes ``weights_only=False``, which lets any checkpoint run code on load; that is why
   requirements/runtime.txt pins mmengine==0.10.7 and why this gate must be revisited before mmengine is
   upgraded (past 0.10.7 it closes, and mmengine's own loader would be used). The shim re-registers the
   ``''`` (local path) scheme of mmengine's ``CheckpointLoader`` with
   :func:`mage_mm.utils.checkpoint.safe_load`: ``weights_only=True`` with an explicit allow-list that
   includes a ``getattr`` restricted to ``HistoryBuffer``'s own statistics methods. Checkpoints written by
   an unpatched mmengine load as they are; ``HistoryBuffer`` itself is not patched.
   Other schemes (``http://``, ``s3://``, ...) keep mmengine's loaders.
2. ``cpu_distributed_init`` (gate: mmengine <= 0.10.7 and no CUDA device). mmengine's
   ``mmengine.dist.utils._init_dist_pytorch`` calls ``torch.cuda.set_device(local_rank)`` for every
   backend, which raises on a CPU build of torch (``torch._C`` has no ``_cuda_setDevice``), so
   ``--launcher pytorch`` (``tools/dist_train.sh``) cannot run CPU (gloo) jobs (mmengine 0.10.7,
   ``mmengine/dist/utils.py``; we found no upstream issue). The shim skips ``set_device`` for
   ``backend='gloo'`` with the torch init backend only; every other case calls mmengine's function.

Two more incompatibilities hit before any config is read (torchvision's op schemas beside a CPU torch,
``numpy.bool8`` for mmagic under numpy 2); they are fixed by the venv's startup hook,
``tools/env/startup_hook.py``, not here. numpy's removed ``np.in1d`` is not restored: only mmpretrain's
retrieval metrics use it, and no mage_mm config does.
"""
import importlib.metadata
from typing import Callable, Dict, Optional

from packaging.version import Version

#: Last mmengine release with the loader and distributed-init code the shims are written against.
MMENGINE_LAST_KNOWN = '0.10.7'
#: First torch release whose ``torch.load`` defaults to ``weights_only=True``.
TORCH_WEIGHTS_ONLY_DEFAULT = '2.6'

#: name -> whether :func:`apply` installed it in this process (gate open), filled by :func:`apply`.
APPLIED: Dict[str, bool] = {}
#: mmengine's functions that the shims replaced, by shim name (tests compare against them).
ORIGINALS: Dict[str, Callable] = {}


def installed_version(dist: str) -> Optional[str]:
    """The installed version of distribution ``dist``, or None when it is not installed."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _public(version: str) -> Version:
    """``Version`` without the local label (``'2.13.0+cpu'`` -> ``2.13.0``)."""
    return Version(Version(version).public)


def safe_loader_needed(torch_version: str, mmengine_version: Optional[str]) -> bool:
    """Gate of shim 1: torch >= 2.6 (weights_only default) and an mmengine <= 0.10.7.

    Args:
        torch_version (str): e.g. ``torch.__version__``.
        mmengine_version (str, optional): Installed mmengine; None when absent (then False).
    """
    if mmengine_version is None:
        return False
    return (_public(torch_version) >= Version(TORCH_WEIGHTS_ONLY_DEFAULT)
            and _public(mmengine_version) <= Version(MMENGINE_LAST_KNOWN))


def cpu_dist_init_needed(mmengine_version: Optional[str], cuda_available: bool) -> bool:
    """Gate of shim 2: mmengine <= 0.10.7 and no CUDA device.

    Args:
        mmengine_version (str, optional): Installed mmengine; None when absent (then False).
        cuda_available (bool): ``torch.cuda.is_available()``.
    """
    if mmengine_version is None or cuda_available:
        return False
    return _public(mmengine_version) <= Version(MMENGINE_LAST_KNOWN)


def _apply_safe_checkpoint_loader() -> None:
    from mmengine.runner.checkpoint import CheckpointLoader

    from .utils.checkpoint import safe_load

    ORIGINALS.setdefault('safe_checkpoint_loader', CheckpointLoader._schemes[''])

    def load_from_local(filename, map_location):
        """mmengine's local loader with ``weights_only=True`` and mage_mm's allow-list (mage_mm.compat).

        Config text that mmengine would evaluate (``Runner.resume``, an inferencer without a config) is
        dropped: it is Python, and a checkpoint must not run code (:func:`mage_mm.utils.cfg_options.drop_config_text`).
        """
        from .utils.cfg_options import drop_config_text
        return drop_config_text(safe_load(filename, map_location=map_location))

    CheckpointLoader.register_scheme(prefixes='', loader=load_from_local, force=True)


def _apply_cpu_distributed_init() -> None:
    import mmengine.dist.utils as dist_utils
    import torch.distributed as torch_dist

    original = ORIGINALS.setdefault('cpu_distributed_init', dist_utils._init_dist_pytorch)

    def _init_dist_pytorch(backend, init_backend='torch', **kwargs) -> None:
        """mmengine's ``_init_dist_pytorch`` without ``torch.cuda.set_device`` for gloo (mage_mm.compat)."""
        if backend == 'gloo' and init_backend == 'torch':
            torch_dist.init_process_group(backend=backend, **kwargs)
        else:
            original(backend, init_backend=init_backend, **kwargs)

    dist_utils._init_dist_pytorch = _init_dist_pytorch


def apply() -> Dict[str, bool]:
    """Install every shim whose gate is open (idempotent); return :data:`APPLIED`."""
    if APPLIED:
        return APPLIED
    import torch

    mmengine_version = installed_version('mmengine')
    gates = {
        'safe_checkpoint_loader': (safe_loader_needed(torch.__version__, mmengine_version),
                                   _apply_safe_checkpoint_loader),
        'cpu_distributed_init': (cpu_dist_init_needed(mmengine_version, torch.cuda.is_available()),
                                 _apply_cpu_distributed_init),
    }
    for name, (needed, install) in gates.items():
        if needed:
            install()
        APPLIED[name] = needed
    return APPLIED


apply()
