"""Shared fixtures. ``import mage_mm.compat`` first: the version-gated shims, as the configs and tools apply them.

This folder is on ``sys.path`` (pytest's rootdir conftest), so tests in every sub-folder import the helpers
``generation_utils``, ``parity_utils`` and ``tool_utils``. Optional files outside the repository (the parity dump,
Debian's Fashion-MNIST) make the tests that need them skip with the reason, unless asked for explicitly.
"""
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
    """The official tiny model's reference outputs (``../shared/parity``, or ``$MAGE_PARITY_DUMP``).

    Absent: the parity tests skip with the reason; with ``MAGE_PARITY_DUMP`` set to a missing file they fail
    (whoever sets it wants the parity checks to run).
    """
    import torch
    path = parity_dump_path()
    if not osp.isfile(path):
        message = f'parity dump not found at {path}'
        if 'MAGE_PARITY_DUMP' in os.environ:
            pytest.fail(f'{message} (MAGE_PARITY_DUMP is set)')
        pytest.skip(f'{message}: the official reference outputs live outside the repository (../shared/parity); '
                    'set MAGE_PARITY_DUMP to run the parity tests')
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


@pytest.fixture
def mmpretrain_scope():
    """Registries resolve names (MAGELARS, RandAugment ...) in mmpretrain's scope, as under the Runner.
    Use with ``pytestmark = pytest.mark.usefixtures('mmpretrain_scope')``."""
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        yield


@pytest.fixture
def mmdet_scope():
    """As :func:`mmpretrain_scope`, in mmdet's scope (detectors, their data pipeline)."""
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmdet'):
        yield


@pytest.fixture(scope='session', autouse=True)
def one_torch_thread():
    """Tiny models: one intra-op thread is faster, and much faster on a shared 2-core machine
    (measured: the parity-model decoding loop went from ~9 s to ~1 s under load). Restored after."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope='session')
def tiny_mage_ckpt(tmp_path_factory) -> str:
    """A randomly initialised tiny MAGE (configs/mage/mage_vit-tiny_*_photo-crops-32px.py) saved like a Runner
    checkpoint (``{'state_dict', 'meta'}``, seed 0). Shared by the generator, probe, fine-tune and detection tests:
    random weights are enough where keys, shapes and loading are under test."""
    from generation_utils import save_random_tiny_checkpoint
    return save_random_tiny_checkpoint(str(tmp_path_factory.mktemp('tiny_mage') / 'mage_tiny.pth'), seed=0)


@pytest.fixture(scope='session')
def photo_crops_dir(tmp_path_factory) -> str:
    """An unlabelled folder of 32 crops (32 px) of the real photos shipped in installed packages (seed 1): the data
    of the tiny pretraining config (photo-crops)."""
    from generation_utils import real_photo_folder
    return real_photo_folder(str(tmp_path_factory.mktemp('photo_crops')), 32, 32, seed=1)


@pytest.fixture(scope='session')
def labelled_photo_root(tmp_path_factory) -> str:
    """ImageFolder tree ``{train,val}/<class>/`` of 32 px crops of 5 real photos, labelled by source photo
    (24 train / 10 val), the data of the tiny probe / fine-tune configs (photo-crops-5cls)."""
    from mage_mm.datasets import packaged_photo_paths, random_crops, write_image_folder
    root = tmp_path_factory.mktemp('labelled')
    images, labels = random_crops(packaged_photo_paths()[:5], 34, 32, seed=0)
    write_image_folder(images[:24], str(root / 'train'), labels=labels[:24])
    write_image_folder(images[24:], str(root / 'val'), labels=labels[24:])
    return str(root)
