"""benchmarks/bench_mage.py writes every key it promises (smoke size: tiny models, one process per measurement)."""
import json
import os.path as osp
import subprocess
import sys

import pytest
from tool_utils import REPO_ROOT


@pytest.mark.slow
@pytest.mark.integration
def test_bench_smoke_json_has_every_key(tmp_path):
    out = tmp_path / 'bench.json'
    res = subprocess.run([sys.executable, osp.join(REPO_ROOT, 'benchmarks', 'bench_mage.py'), '--smoke', '--json',
                          str(out)], capture_output=True, text=True, cwd=REPO_ROOT, timeout=1800)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    data = json.loads(out.read_text())
    sys.path.insert(0, osp.join(REPO_ROOT, 'benchmarks'))
    import bench_mage
    assert data['roofline']['fp32_gflops'] > 0 and data['roofline']['bf16_gflops'] > 0
    assert data['machine']['cpu_count'] >= 1 and data['size']['name'] == 'smoke'
    for workload in bench_mage.WORKLOADS:
        expected = [v for v in bench_mage.VARIANTS[workload] if v in bench_mage.SMOKE_VARIANTS]
        assert sorted(data[workload]) == sorted(expected), workload
        for variant, r in data[workload].items():
            assert 'error' not in r, (workload, variant, r.get('error'))
            for key in ('median_s', 'peak_rss_mb', 'gflops_per_s', 'speedup_vs_fp32', 'roofline_fraction'):
                assert isinstance(r[key], float) and r[key] > 0, (workload, variant, key, r[key])
            assert r['peak_rss_mb'] >= r['import_rss_mb'] > 0
        assert data[workload]['fp32']['speedup_vs_fp32'] == 1.0
    # the cache variant does fewer FLOPs (no tokenizer pass)
    assert data['tiny_train_step']['cache']['gflops'] < data['tiny_train_step']['fp32']['gflops']
