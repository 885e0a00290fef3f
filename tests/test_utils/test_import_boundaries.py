"""Import boundaries of the package layout (issue 8): pure modules stay pure, registrations live in leaf modules,
and nothing under ``mage_mm/models`` imports a layer above it.

The purity checks run in a fresh interpreter (``sys.modules`` of this test process already holds everything).
"""
import ast
import glob
import json
import os.path as osp
import subprocess
import sys

import pytest
from tool_utils import REPO_ROOT

PURE = ['mage_mm.models.generators.decoding', 'mage_mm.models.utils.masking', 'mage_mm.models.utils.transformer',
        'mage_mm.models.utils.mage_network', 'mage_mm.models.generators', 'mage_mm.evaluation.fid',
        'mage_mm.evaluation.inception', 'mage_mm.evaluation.knn']
HEAVY = ('mmagic', 'mmdet')


def _imported_after(statements: str) -> dict:
    code = (f'import json, sys\n{statements}\n'
            'print(json.dumps(sorted({m.split(".")[0] for m in sys.modules} | '
            '{m for m in sys.modules if m.startswith(("mmpretrain.models", "mage_mm"))})))')
    res = subprocess.run([sys.executable, '-c', code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return set(json.loads(res.stdout.strip().splitlines()[-1]))


@pytest.mark.integration
def test_pure_modules_import_neither_mmagic_nor_mmdet():
    mods = _imported_after('\n'.join(f'import {m}' for m in PURE))
    assert not mods & set(HEAVY), sorted(mods & set(HEAVY))
    # not even mmpretrain's model zoo (which imports mmdet where it is installed)
    assert not {m for m in mods if m.startswith('mmpretrain.models')}
    assert set(PURE) <= mods


@pytest.mark.integration
def test_import_mage_mm_registers_nothing_and_the_leaves_are_explicit():
    bare = _imported_after('import mage_mm')
    assert not bare & {'mmengine', 'mmpretrain', 'mmagic', 'mmdet'}, sorted(bare)
    registered = _imported_after('import mage_mm.register')
    assert 'mmagic' not in registered  # mmagic only through its leaf modules
    assert not registered & {'mage_mm.models.generators.mage_generator', 'mage_mm.evaluation.metrics',
                             'mage_mm.models.algorithms.vqgan_trainer', 'mage_mm.models.detection'}


@pytest.mark.integration
def test_generation_path_imports_no_mmagic(tmp_path):
    """tools/generate.py's path (init_generator, generate, PNGs) builds the generators without mmagic or diffusers;
    the classes it builds are the ones the leaf modules register in mmagic's MODELS."""
    cfgs = [osp.join(REPO_ROOT, 'configs', 'generation', name) for name in (
        'mage-gen_vit-tiny_iter8-temp6_photo-crops-32px.py',
        'mage-cond-gen_vit-tiny_iter8-temp6_photo-crops-5cls-32px.py')]
    ckpt, out = str(tmp_path / 'gen.pth'), str(tmp_path / 'out')
    code = f"""
import importlib.util, json, sys
import torch
from mage_mm.apis import init_generator
model = init_generator({cfgs[0]!r})
torch.save(dict(state_dict=model.state_dict()), {ckpt!r})
cond = init_generator({cfgs[1]!r})
assert cond.generate([0, 1], labels=[0, 1], num_iter=2).shape == (2, 3, 32, 32)
spec = importlib.util.spec_from_file_location('generate_tool', {osp.join(REPO_ROOT, 'tools', 'generate.py')!r})
tool = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tool)
assert tool.main([{cfgs[0]!r}, {ckpt!r}, '--out-dir', {out!r}, '--num-images', '2', '--no-progress']) in (0, None)
print(json.dumps([m for m in ('mmagic', 'diffusers') if m in sys.modules]))
"""
    res = subprocess.run([sys.executable, '-c', code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert json.loads(res.stdout.strip().splitlines()[-1]) == []
    assert len(glob.glob(osp.join(out, '*.png'))) >= 2

    from mmagic.registry import MODELS as MMAGIC_MODELS

    import mage_mm.models.generators.mage_cond_generator  # noqa: F401
    from mage_mm.apis.inference import generator_types
    for name, cls in generator_types().items():
        assert MMAGIC_MODELS.get(name) is cls, name


def test_leaf_modules_register_their_components():
    from mmagic.registry import METRICS as MMAGIC_METRICS
    from mmagic.registry import MODELS as MMAGIC_MODELS
    from mmdet.registry import MODELS as MMDET_MODELS
    from mmpretrain.registry import METRICS, MODELS

    import mage_mm.evaluation.metrics  # noqa: F401
    import mage_mm.models.algorithms.vqgan_trainer  # noqa: F401
    import mage_mm.models.detection  # noqa: F401
    import mage_mm.models.generators.mage_generator  # noqa: F401
    assert MMAGIC_MODELS.get('MAGEGenerator') is not None and MMAGIC_METRICS.get('LocalInceptionFID') is not None
    assert MMDET_MODELS.get('MAGEViTDet') is not None and MMDET_MODELS.get('SimpleFeaturePyramid') is not None
    for name in ('MAGE', 'MAGEC', 'MAGEViT', 'MAGEVQGAN', 'MAGEPretrainDecoder', 'MAGEPretrainHead',
                 'VQGANTokenizerTrainer'):
        assert MODELS.get(name) is not None, name
    assert METRICS.get('VQReconstructionMetric') is not None


def _imports(path: str):
    """Absolute names of the mage_mm modules a file imports (relative imports resolved)."""
    package = osp.relpath(osp.dirname(path), REPO_ROOT).replace(osp.sep, '.')
    for node in ast.walk(ast.parse(open(path).read(), path)):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split('.')
                base = base[:len(base) - node.level + 1]
                yield '.'.join(base + ([node.module] if node.module else []))
            else:
                yield node.module


UPPER = ('mage_mm.engine', 'mage_mm.evaluation', 'mage_mm.apis', 'mage_mm.converters', 'mage_mm.register')


def test_models_import_no_layer_above_them():
    found = {}
    for path in glob.glob(osp.join(REPO_ROOT, 'mage_mm', 'models', '**', '*.py'), recursive=True):
        bad = sorted(m for m in _imports(path) if m and m.startswith(UPPER))
        if bad:
            found[osp.relpath(path, REPO_ROOT)] = bad
    assert not found, f'models -> engine/evaluation/apis/converters imports: {found}'


def test_the_boundary_scan_sees_relative_imports():
    # the scan itself: a relative import three levels up is resolved to its absolute name
    path = osp.join(REPO_ROOT, 'mage_mm', 'models', 'generators', 'generator.py')
    names = set(_imports(path))
    assert 'mage_mm.models.utils.mage_network' in names and 'mage_mm.models.generators.decoding' in names
