"""model-index.yml and the metafiles: every config is listed once with its task, and what they say is true.

OpenMMLab writes README and Config paths from the repository root (mim reads them that way), so they are
checked from the root here.
"""
import glob
import os.path as osp

import pytest
import torch
import yaml
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
INDEX = osp.join(ROOT, 'model-index.yml')


def read_yaml(path):
    with open(path, encoding='utf-8') as f:
        return yaml.safe_load(f)


def metafiles():
    return [osp.join(ROOT, p) for p in read_yaml(INDEX)['Import']]


def all_models():
    models = []
    for path in metafiles():
        models += [dict(m, _metafile=osp.relpath(path, ROOT)) for m in read_yaml(path).get('Models') or []]
    return models


def all_collections():
    return [c for path in metafiles() for c in read_yaml(path).get('Collections') or []]


def config_files():
    paths = glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
    return sorted(osp.relpath(p, ROOT) for p in paths if '_base_' not in osp.relpath(p, ROOT).split(osp.sep))


def test_index_imports_existing_metafiles():
    imports = read_yaml(INDEX)['Import']
    assert imports and len(set(imports)) == len(imports)
    for path in imports:
        assert osp.isfile(osp.join(ROOT, path)), path


def test_every_config_is_listed_once_and_every_listed_config_exists():
    listed = [m['Config'] for m in all_models()]
    assert sorted(listed) == config_files()  # also: no config listed twice
    for model in all_models():
        assert model['Config'].startswith('configs/'), model['Name']
        assert osp.isfile(osp.join(ROOT, model['Config'])), model['Config']
        # the name is the config's (mim identifies configs by name)
        assert model['Name'] == osp.splitext(osp.basename(model['Config']))[0], model['Name']
        # the metafile of a folder lists that folder's configs
        assert model['Config'].startswith(osp.dirname(model['_metafile']) + '/'), model['Name']


def test_entries_have_collection_task_data_and_existing_links():
    collections = {c['Name']: c for c in all_collections()}
    assert len(collections) == len(all_collections())
    for collection in collections.values():
        assert osp.isfile(osp.join(ROOT, collection['README'])), collection['Name']
        assert collection['Paper']['URL'].startswith('https://'), collection['Name']
    names = {m['Name'] for m in all_models()}
    for model in all_models():
        assert model['In Collection'] in collections, model['Name']
        meta = model['Metadata']
        assert meta['Training Data'] and isinstance(meta['Parameters'], int), model['Name']
        assert model['Results'], model['Name']
        for result in model['Results']:
            assert result['Task'] and result['Dataset'], model['Name']
            assert isinstance(result['Metrics'], dict), model['Name']
        for downstream in model.get('Downstream', []):
            assert downstream in names, (model['Name'], downstream)


# the published numbers of the official weights (LTH14/mage README)
PUBLISHED = {
    'mage-gen_vit-base-p16_iter20-temp6-50k_in1k-256px': {'FID': 11.1, 'IS': 81.2},
    'mage-gen_vit-large-p16_iter20-temp6-50k_in1k-256px': {'FID': 9.10, 'IS': 105.1},
    'vit-base-p16_8xb512-linear-coslr-90e_in1k-256px': {'Top 1 Accuracy': 74.7},
    'vit-large-p16_8xb512-linear-coslr-90e_in1k-256px': {'Top 1 Accuracy': 78.9},
    'vit-base-p16_8xb128-coslr-100e_in1k-256px': {'Top 1 Accuracy': 82.5},
    'vit-large-p16_8xb128-coslr-50e_in1k-256px': {'Top 1 Accuracy': 83.9},
}


def test_published_results_and_only_those():
    for model in all_models():
        metrics = {k: v for r in model['Results'] for k, v in r['Metrics'].items()}
        assert metrics == PUBLISHED.get(model['Name'], {}), model['Name']


def registry_of(cfg):
    import importlib
    for module in cfg.get('custom_imports', {}).get('imports', []):
        importlib.import_module(module)
    return importlib.import_module(f'{cfg.default_scope}.registry').MODELS


def without_weights(cfg):
    """Drop every Pretrained init and init checkpoint: the count needs the architecture only."""
    if isinstance(cfg, dict):
        cfg.pop('init_cfg', None)
        if 'init_checkpoint' in cfg:
            cfg['init_checkpoint'] = None
        for value in cfg.values():
            without_weights(value)
    elif isinstance(cfg, list):
        for value in cfg:
            without_weights(value)
    return cfg


@pytest.mark.slow
@pytest.mark.parametrize('model', all_models(), ids=lambda m: m['Name'])
def test_parameter_counts(model):
    from mmengine.registry import DefaultScope
    cfg = Config.fromfile(osp.join(ROOT, model['Config']))
    with DefaultScope.overwrite_default_scope(cfg.default_scope), torch.device('meta'):
        net = registry_of(cfg).build(without_weights(cfg.model))
    assert sum(p.numel() for p in net.parameters()) == model['Metadata']['Parameters']


def test_mim_loader_reads_the_index():
    pytest.importorskip('mim', reason='openmim is not installed')
    from mim.commands.search import convert2df
    from modelindex.load_model_index import load
    index = load(INDEX)
    # modelindex resolves README paths from the metafile's folder, OpenMMLab (and mim) from the repository root
    assert all('Path to README file' in e for e in index.check(silent=True)), index.check(silent=True)
    table = convert2df(index)
    assert sorted(table['config']) == config_files()
    assert table.loc['vit-large-p16_8xb512-linear-coslr-90e_in1k-256px', 'imagenet-1k/top_1_accuracy'] == 78.9
    assert table.loc['mage-gen_vit-large-p16_iter20-temp6-50k_in1k-256px', 'imagenet-1k/fid'] == 9.10


@pytest.mark.integration
def test_mim_search_finds_every_config_of_an_installed_wheel(tmp_path):
    """`pip install` of a built wheel ships the index in mage_mm/.mim; mim's own `search` lists every config."""
    import shutil
    import subprocess
    import sys

    # build from a copy of the tracked files, so that the build's mage_mm/.mim copies stay out of the checkout
    src = tmp_path / 'src'
    tracked = subprocess.run(['git', 'ls-files'], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for rel in tracked.split():
        if rel.startswith(('mage_mm/', 'configs/', 'tools/', 'requirements/')) or rel in (
                'setup.py', 'model-index.yml', 'README.md'):
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(osp.join(ROOT, rel), src / rel)
    pip = [sys.executable, '-m', 'pip', '--disable-pip-version-check', '-q']
    subprocess.run(pip + ['wheel', '--no-deps', '--no-build-isolation', str(src), '-w', str(tmp_path / 'whl')],
                   check=True, capture_output=True)
    wheel = next((tmp_path / 'whl').glob('mage_mm-*.whl'))
    site = tmp_path / 'site'
    subprocess.run(pip + ['install', '--no-deps', '--target', str(site), str(wheel)], check=True, capture_output=True)
    assert (site / 'mage_mm' / '.mim' / 'model-index.yml').is_file()

    mim = osp.join(osp.dirname(sys.executable), 'mim')
    out = subprocess.run([mim, 'search', 'mage_mm', '--field', 'config', '--display-width', '400'], cwd=tmp_path,
                         env=dict(__import__('os').environ, PYTHONPATH=str(site)), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    listed = set(line.strip() for line in out.stdout.split() if line.strip().startswith('configs/'))
    assert listed == set(config_files()), sorted(set(config_files()) ^ listed)
