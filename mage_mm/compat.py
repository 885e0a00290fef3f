"""Runtime compatibility shims for the current stack (torch>=2.6, numpy 2).

Every shim is guarded and does nothing where it is not needed. They run at
``import mage_mm``, which every config does first through ``custom_imports``
and which ``tests/conftest.py`` and the ``tools/`` scripts import before any
OpenMMLab package.

1. ``torchvision`` op schemas: PyPI's torchvision is a CUDA build whose
   ``_C.so`` cannot load beside a CPU torch; ``import torchvision`` then dies on
   ``register_fake('torchvision::nms')``. We define the two op schemas only when
   that library really fails to load (mmdet uses ``mmcv.ops.nms`` instead).
2. numpy 2 removed ``np.bool8`` (used by mmagic at import) and ``np.in1d``
   (mmpretrain retrieval metrics).
3. CPU-only distributed runs: mmengine's ``_init_dist_pytorch`` calls
   ``torch.cuda.set_device`` unconditionally, which a CPU build of torch
   cannot do. Where CUDA is unavailable we skip that call (gloo needs no
   device); CPU configs also set ``model_wrapper_cfg.device_ids=None``.
4. Safe checkpoint loading: see :mod:`mage_mm.utils.checkpoint`, installed
   here so that mmengine's ``load_checkpoint`` (``load_from``, ``resume``,
   ``init_cfg=Pretrained``) uses ``weights_only=True`` with an explicit
   allow-list instead of failing (or unpickling arbitrary code).
"""
import importlib.util
import os
import os.path as osp
from typing import Optional

import numpy as np
import torch

_TORCHVISION_LIB: Optional[torch.library.Library] = None


def _torchvision_ops_loadable() -> bool:
    """Whether torchvision's compiled ops are (or can be) registered."""
    try:
        torch.ops.torchvision.nms
        return True
    except (AttributeError, RuntimeError):
        pass
    spec = importlib.util.find_spec('torchvision')
    if spec is None or not spec.submodule_search_locations:
        return True  # nothing to fix: torchvision is not installed
    pkg_dir = spec.submodule_search_locations[0]
    libs = [f for f in os.listdir(pkg_dir) if f.startswith('_C.') and f.endswith(('.so', '.pyd'))]
    for lib in libs:
        try:
            torch.ops.load_library(osp.join(pkg_dir, lib))
            return True
        except OSError:
            return False
    return False


def patch_torchvision_op_schemas() -> None:
    global _TORCHVISION_LIB
    if _TORCHVISION_LIB is not None or _torchvision_ops_loadable():
        return
    lib = torch.library.Library('torchvision', 'DEF')
    lib.define('nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor')
    lib.define('qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor')
    _TORCHVISION_LIB = lib  # keep the registration alive


def patch_numpy_aliases() -> None:
    if not hasattr(np, 'bool8'):
        np.bool8 = np.bool_
    if not hasattr(np, 'in1d'):

        def in1d(ar1, ar2, assume_unique=False, invert=False):
            return np.isin(np.ravel(ar1), ar2, assume_unique=assume_unique, invert=invert)

        np.in1d = in1d


def patch_cpu_distributed_init() -> None:
    if torch.cuda.is_available() or importlib.util.find_spec('mmengine') is None:
        return
    import mmengine.dist.utils as dist_utils
    if getattr(dist_utils._init_dist_pytorch, '_mage_mm_cpu', False):
        return
    original = dist_utils._init_dist_pytorch

    def _init_dist_pytorch(backend, init_backend='torch', **kwargs):
        import torch.distributed as torch_dist
        if backend == 'gloo' and init_backend == 'torch':
            torch_dist.init_process_group(backend=backend, **kwargs)
        else:
            original(backend, init_backend=init_backend, **kwargs)

    _init_dist_pytorch._mage_mm_cpu = True
    dist_utils._init_dist_pytorch = _init_dist_pytorch


def apply_all() -> None:
    patch_torchvision_op_schemas()
    patch_numpy_aliases()
    patch_cpu_distributed_init()
    if importlib.util.find_spec('mmengine') is not None:
        from .utils.checkpoint import install_safe_checkpoint_loading
        install_safe_checkpoint_loading()


apply_all()
