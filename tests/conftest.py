"""Shared fixtures. ``import mage_mm.compat`` first: the version-gated shims, as the configs and tools apply them."""
import os
import os.path as osp

import pytest

import mage_mm.compat  # noqa: F401
import mage_mm.register  # noqa: F401  all mmpretrain-side components, as the configs import them

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEFAULT_PARITY_DUMP = osp.join(REPO_ROOT, '..', 'shared', 'parity', 'official_tiny_seed0.pt')


def parity_dump_path() -> str:
    return os.environ.get('MAGE_PARITY_DUMP', DEFAULT_PARITY_DUMP)


@pytest.fixture(scope='session')
def parity_dump():
    import torch
    path = parity_dump_path()
    if not osp.isfile(path):
        # the dump lives outside the repo (../shared/parity); CI has it beside the clone
        pytest.fail(f'parity dump not found at {path}; set MAGE_PARITY_DUMP')
    return torch.load(path, map_location='cpu', weights_only=True)


@pytest.fixture(autouse=True)
def isolated_default_scope():
    """Each test starts from the default scope it found (in-process Runners set a global one)."""
    import copy

    from mmengine.registry import DefaultScope
    saved = copy.copy(DefaultScope._instance_dict)
    yield
    DefaultScope._instance_dict = saved


@pytest.fixture(scope='session')
def repo_root() -> str:
    return REPO_ROOT
