"""`make demo` shortened (DEMO_SHORT=1: a few iterations per stage) and the report tool on its real outputs."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
from PIL import Image
from tool_utils import load_tool

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
REPORT_TOOL = osp.join(ROOT, 'tools', 'analysis_tools', 'demo_report.py')
pytestmark = [pytest.mark.integration, pytest.mark.slow]  # the whole demo, shortened (minutes)


def _report_module():
    return load_tool('analysis_tools/demo_report')


@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    base = tmp_path_factory.mktemp('demo')
    work, data = str(base / 'work'), str(base / 'data')
    res = subprocess.run(['bash', 'tools/demo.sh'], cwd=ROOT, capture_output=True, text=True, timeout=900,
                         env=dict(os.environ, DEMO_SHORT='1', PYTHON=sys.executable, WORK_DIR=work, DATA_DIR=data,
                                  PYTHONPATH=ROOT))
    assert res.returncode == 0, f'STDOUT:\n{res.stdout[-4000:]}\nSTDERR:\n{res.stderr[-4000:]}'
    return work, data, res.stdout


def test_short_demo_produces_every_artefact(demo):
    work, data, log = demo
    stages = ('data: Fashion-MNIST', 'tokenizer training', 'token cache', 'MAGE pretraining', 'generation', 'FID',
              'linear probe: pretrained vs random', 'class-conditional generation', 'report')
    for i, name in enumerate(stages, 1):
        assert f'== [{i}/9] {name}: done in' in log
    assert 'recon/psnr' in log  # the tokenizer validated at its last iteration
    from mage_mm.utils.precision import resolve_precision
    assert f"== precision 'auto' resolves to {resolve_precision('auto', 'cpu')} on this CPU" in log
    assert osp.isfile(osp.join(work, 'tokenizer', 'iter_4.pth')) and osp.isfile(osp.join(work, 'mage', 'iter_4.pth'))
    timings = json.load(open(osp.join(work, 'results.json')))['timings']
    assert list(timings) == [f'{i}. {name}' for i, name in enumerate(stages, 1)]
    assert all(t > 0 for t in timings.values())
    # stages 5-8 ran in two lanes side by side: the wall time is recorded and below the stages' sum
    results = json.load(open(osp.join(work, 'results.json')))
    assert 0 < results['wall_s'] < sum(timings.values())
    assert '== lane 2\'s output:' in log and osp.isfile(osp.join(work, 'lane2.log'))
    for png in ('curves_tokenizer.png', 'curves_mage.png', 'recon_grid.png'):
        im = Image.open(osp.join(work, png))
        assert im.format == 'PNG' and im.width > 100 and im.height > 100
    # 16 images: 2 rows of 8 (real) each with a reconstruction row below, 32 px + 2 px gaps, zoom 4
    assert Image.open(osp.join(work, 'recon_grid.png')).size == ((8 * 34 + 2) * 4, (4 * 34 + 2) * 4)

    report = open(osp.join(work, 'report.md')).read()
    for needle in ('## Stage timings', '2. tokenizer training', '## Final logged values', 'recon/psnr',
                   'codebook_perplexity', '![reconstructions](recon_grid.png)', '![tokenizer](curves_tokenizer.png)',
                   '![mage](curves_mage.png)', '![samples](pictures/samples.png)', 'logical CPUs',
                   'MAGE-pretrained encoder |', 'randomly initialised encoder |', 'generated (8) vs test (32) |',
                   'the floor at this size |', '## Targets', '| FID / floor', '| linear probe gap',
                   '| class accuracy of guided samples', '| whole demo wall time',
                   "precision/the configs' 'auto' on this CPU |"):
        assert needle in report, needle
    # the MAGE trained from the token cache the demo made (2 views of each of the 64 training images)
    manifest = json.load(open(osp.join(work, 'tokens_k2', 'manifest.json')))
    assert manifest['num_images'] == 64 and manifest['num_views'] == 2
    assert len([f for f in os.listdir(osp.join(work, 'samples')) if f.endswith('.png') and f != 'grid.png']) == 8
    fid = json.load(open(osp.join(work, 'results', 'fid.json')))['FID (TF-Inception)']
    assert all(v > 0 for v in fid.values())
    probe = json.load(open(osp.join(work, 'results', 'probe.json')))
    assert all(0 <= v <= 100 for v in probe['linear probe, Fashion-MNIST test top-1 (%)'].values())


def test_the_mage_run_used_the_trained_tokenizer(demo):
    import torch

    from mage_mm.utils.checkpoint import safe_load
    work, _, _ = demo
    tok = safe_load(osp.join(work, 'tokenizer', 'iter_4.pth'))['state_dict']
    mage = safe_load(osp.join(work, 'mage', 'iter_4.pth'))['state_dict']
    keys = [k for k in tok if k.startswith('tokenizer.')]
    assert keys and all(torch.equal(mage['backbone.' + k], tok[k]) for k in keys)


def test_report_helpers_on_the_demo_logs(demo, tmp_path):
    work, data, _ = demo
    tool = _report_module()
    train, val = tool.read_scalars(osp.join(work, 'tokenizer'))
    assert [e['iter'] for e in train] == [1, 2, 3, 4] and len(val) == 1
    final = tool.final_values(train, val)
    assert final['iterations'] == 4 and final['loss'] == train[-1]['loss']
    assert 0 < final['recon/psnr'] < 100 and 'time' not in final and 'lr' not in final
    paths = tool.pick_images(osp.join(data, 'test'), 10)
    assert len(paths) == 10 and len({osp.basename(osp.dirname(p)) for p in paths}) == 10  # spread over classes
    a, b = tmp_path / 'a.json', tmp_path / 'b.json'
    a.write_text(json.dumps({'timings': {'x': 1.0}, 'fid': {'fid': 80.0}}))
    b.write_text(json.dumps({'timings': {'y': 2.0}, 'note': 'ok'}))
    assert tool.merge_results([str(a), str(b)]) == {'timings': {'x': 1.0, 'y': 2.0}, 'fid': {'fid': 80.0},
                                                    'note': 'ok'}
    with pytest.raises(FileNotFoundError, match='scalars.json'):
        tool.read_scalars(str(tmp_path))


def test_short_demo_conditional_stage(demo):
    """Stage 7: the judge, the conditional fine-tune, the guidance choice, balanced samples and their numbers."""
    work, _, _ = demo
    (section, ) = json.load(open(osp.join(work, 'results', 'conditional.json'))).values()
    assert 0 <= section['judge top-1 on real test images (%)'] <= 100
    assert [k for k in section if k.startswith('class accuracy of 20 samples, no guidance s = 1')]
    assert set(section['selection (other seeds): class accuracy per scale (%)']) == {'s = 1', 's = 3'}
    labels = [int(line.split()[1]) for line in open(osp.join(work, 'cond', 'samples_s1', 'labels.txt'))]
    assert labels == [c for c in range(10) for _ in range(2)]  # balanced, class-major
    grid = Image.open(osp.join(work, 'pictures', 'conditional_unguided.png'))
    assert grid.size == (2 * 34 + 2, 10 * 34 + 2)  # one row per class
    assert osp.isfile(osp.join(work, 'mage_cond', 'iter_4.pth'))


def test_target_rows_state_ratio_gap_and_accuracy():
    """The report's targets table: FID / floor, probe gap, guided vs unguided accuracy, total time."""
    tool = _report_module()
    results = {
        'timings': {'1. data': 100.0, '2. rest': 700.0},
        'FID (TF-Inception)': {'generated (100) vs test (500)': 150.0,
                               'real train (100) vs test: the floor at this size': 100.0},
        'linear probe, Fashion-MNIST test top-1 (%)': {'MAGE-pretrained encoder': 70.0,
                                                      'randomly initialised encoder': 50.0},
        'class-conditional MAGE (Fashion-MNIST, LeNet-5 judge trained on the real training split)': {
            'judge top-1 on real test images (%)': 85.0,
            'class accuracy of 100 samples, no guidance s = 1 (%)': 40.0,
            'class accuracy of 100 samples, guidance s = 3 (%)': 55.0}}
    rows = {r[0].split(' (')[0].split(':')[0]: r[1:] for r in tool.target_rows(results)}
    assert rows['FID / floor'] == ('150.0 / 100.0 = 1.50', '<= 1.8', 'yes')
    assert rows['linear probe gap'] == ('70.0 - 50.0 = 20.0', '>= 15', 'yes')
    assert rows['class accuracy of guided samples'] == ('55.0 (s = 1: 40.0)', '>= 60 and above s = 1', '**no**')
    assert rows['whole demo wall time'] == ('800.0', '<= 900', 'yes')
    # stages that ran side by side count once: the recorded wall time, not the sum
    rows = {r[0].split(' (')[0]: r[1:] for r in tool.target_rows(dict(results, wall_s=950.5))}
    assert rows['whole demo wall time'] == ('950.5', '<= 900', '**no**')
    assert tool.target_rows({'other': {'x': 1.0}}) == []
