"""benchmarks/gpu: the CPU dry run end to end with only the device's packages importable, the FLOP
counter against a hand count and against torch's own FLOP counter on the tiny model, the wheel list
against what the measured paths import, and the script's generation path against ``MAGEGenerator``."""
import importlib.metadata as md
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from packaging.requirements import Requirement

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
GPU = osp.join(ROOT, 'benchmarks', 'gpu')
# the CPU stack's pins; the device runs Python 3.12
DEVICE_MARKERS = dict(python_version='3.12', python_full_version='3.12.3', sys_platform='linux',
                      platform_system='Linux', platform_machine='x86_64', implementation_name='cpython', extra='')
# a requirement met on the device by another distribution of the same import name
SAME_IMPORT = {
    'opencv-python': 'opencv-python-headless',  # mmengine asks for opencv-python; the image has the headless build
    'modelindex': 'model-index',  # mmpretrain asks for the "modelindex" shim, whose only content is model-index
}
# a carried wheel built from another distribution here: mmcv's sdist with MMCV_WITH_OPS=0 is named mmcv-lite
BUILT_FROM = {'mmcv-lite': 'mmcv'}


def load(name: str):
    spec = importlib.util.spec_from_file_location(f'mage_mm_bench_gpu_{name}', osp.join(GPU, f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def bench():
    return load('bench_gpu')


@pytest.fixture(scope='module')
def guard():
    return load('import_guard')


def canonical(name: str) -> str:
    return name.lower().replace('_', '-').replace('.', '-')


# ------------------------------------------------------------------ the dry run, end to end
@pytest.fixture(scope='module')
def dry_run(tmp_path_factory):
    """``bench_gpu.py --dry-run`` in a subprocess under the device import guard (once per module)."""
    from conftest import parity_dump_path
    out = tmp_path_factory.mktemp('bench_gpu')
    report = out / 'imports.json'
    env = dict(os.environ, OMP_NUM_THREADS='1', MAGE_PARITY_DUMP=parity_dump_path(), PYTHONUNBUFFERED='1')
    env.pop('OUT', None)
    cmd = [sys.executable, osp.join(GPU, 'import_guard.py'), '--report', str(report), '--',
           osp.join(GPU, 'bench_gpu.py'), '--dry-run', '--out', str(out), '--budget-s', '400']
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f'dry run failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}'
    with open(out / 'bench_gpu.json') as f:
        res = json.load(f)
    with open(report) as f:
        imports = json.load(f)
    return dict(res=res, imports=imports, stdout=proc.stdout, out=out)


@pytest.mark.integration
@pytest.mark.slow
def test_dry_run_end_to_end(dry_run, bench):
    res = dry_run['res']
    assert res['errors'] == {}, '\n'.join(res['errors'].values())
    assert res['skipped'] == [] and res['dry_run'] is True and res['timing'] == 'perf_counter'
    assert {'date', 'env', 'matmul', 'parity', 'train', 'loss_vs_fp32', 'stability', 'generation', 'flops_per_image',
            'flops_per_image_full_size', 'wall_s', 'budget_s'} <= set(res)
    assert res['matmul']['tflops'] > 0
    par = res['parity']
    assert par['passed'] and par['token_ids_exact'] and par['decode_replay_exact'], par
    # every (arch, batch) of the grid, then the extras (half-precision attention, tokenizer under autocast,
    # torch.compile); by default the tokenizer encodes in fp32 under AMP where MAGEVQGAN supports the switch
    tok = not bench.tokenizer_autocast_supported()
    rows = {(r['arch'], r['precision'], r['batch'], r['fp32_attention'], r['compile'], r['tokenizer_autocast']): r
            for r in res['train']}
    expected = {(a, 'bf16', b, True, None, tok) for a in ('vit-b', 'vit-l') for b in (2, 4)}
    expected |= {('vit-b', 'bf16', 4, False, None, tok), ('vit-b', 'bf16', 4, True, 'eager', tok)}
    if not tok:
        expected.add(('vit-b', 'bf16', 4, True, None, True))
    assert set(rows) == expected
    for r in rows.values():
        assert r['status'] == 'ok' and r['images_per_s'] > 0 and 0 < r['mfu'] and r['step_s'] > 0, r
        assert r['distinct_codes_at_setup'] > 1  # the spread codebook gives diverse tokens
        assert r['flops_per_image'] == res['flops_per_image'][r['arch']]['pretrain']['total']
    for r in res['loss_vs_fp32']:
        assert r['rel_diff'] < 1e-2 and 0 < r['logits_rel_diff'] < 5e-2 and r['token_agreement'] > 0.9, r
    assert [s['arch'] for s in res['stability']] == ['vit-b', 'vit-l']
    assert all(s['passed'] and s['steps'] == 3 for s in res['stability'])
    assert [(g['batch'], g['seed_mode']) for g in res['generation']] == [(2, 'per_image'), (4, 'per_image'),
                                                                         (4, 'batch')]
    for g in res['generation']:
        assert g['status'] == 'ok' and g['images_finite'] and g['image_shape'] == [g['batch'], 3, 64, 64], g
        assert g['num_iter'] == 20 and g['choice_temperature'] == 6.0
        assert g['projected_50k_s'] == pytest.approx(50000 / g['images_per_s'])
    assert 'per_image_decode_s' in res['generation'][0]
    # the full-size counts come from the real ViT-B/L configs
    full = res['flops_per_image_full_size']
    assert full['vit-l']['total'] > full['vit-b']['total'] > 1e11
    table = (dry_run['out'] / 'bench_gpu_table.md').read_text()
    assert dry_run['stdout'].rstrip().endswith(table.rstrip())  # the table is printed last
    assert '| vit-l | bf16 | 4 |' in table and 'parity (fp32, TF32 off): PASS' in table


@pytest.mark.integration
@pytest.mark.slow
def test_wheel_list_is_what_the_dry_run_imports(dry_run, guard):
    """Under the guard the run succeeded, so nothing outside the lists is needed; and every wheel is used."""
    imports = dry_run['imports']
    assert 'mmcv._ext' in imports['refused']  # the guard was on, and mmcv's compiled ops were hidden
    imported = set(imports['imported'])
    for dist in guard.read_names(osp.join(GPU, 'wheels.txt')):
        assert guard.import_names(dist) & imported, f'{dist} is in wheels.txt but the measured paths never import it'
    # mmagic (and with it diffusers) stays out: its model registry needs mmcv's compiled ops; pycocotools stays
    # out, so that mmpretrain skips its multimodal models, which the image's transformers 5.x breaks at import
    assert not {'mmagic', 'diffusers', 'pycocotools'} & imported


def test_wheel_list_pins_and_requirements(guard):
    """Exact pins equal to the CPU stack's; every wheel's own requirements are met on the device."""
    wheels = {}
    with open(osp.join(GPU, 'wheels.txt')) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if line:
                name, _, version = line.partition('==')
                assert version, f'wheels.txt: {line!r} has no exact pin'
                wheels[canonical(name)] = version
    constraints = {}
    with open(osp.join(ROOT, 'requirements', 'constraints.txt')) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if '==' in line:
                name, version = line.split('==')
                constraints[canonical(name)] = version.strip()
    image = {canonical(n) for n in guard.read_names(osp.join(GPU, 'image_packages.txt'))}
    for name, version in wheels.items():
        assert name not in image, f'{name} is already in the device image: do not carry another version'
        here = BUILT_FROM.get(name, name)
        if here in constraints:
            assert version == constraints[here], f'{name}: wheels.txt {version} vs constraints {constraints[here]}'
        # the dry run tests the venv's versions: a carried wheel must be that version (after an upgrade of the
        # venv, set the new pin in wheels.txt and rebuild .whl/ as benchmarks/gpu/README.md says)
        assert md.version(here) == version, f'{name}: the CPU venv (where the dry run passes) has {md.version(here)}'
        for req in md.requires(here) or []:
            r = Requirement(req)
            if r.marker is not None and not r.marker.evaluate(DEVICE_MARKERS):
                continue
            dep = SAME_IMPORT.get(canonical(r.name), canonical(r.name))
            dep = {v: k for k, v in BUILT_FROM.items()}.get(dep, dep)
            assert dep in wheels or dep in image, f'{name} requires {req}: neither carried nor in the device image'


# ------------------------------------------------------------------ FLOP counter
def hand_count_tiny() -> dict:
    """The parity dump's tiny model (bench_gpu.TINY) at 64 px, counted by hand: 2 FLOPs per MAC."""
    # tokenizer: VQGAN ch 32, ch_mult (1, 1, 2), one res block per level, z 256, 1024 codes; 64 -> 32 -> 16 px
    conv_in = 2 * 3 * 32 * 9 * 64 * 64
    level0 = 2 * (2 * 32 * 32 * 9 * 64 * 64)  # conv1, conv2 at 64x64
    level1 = 2 * (2 * 32 * 32 * 9 * 32 * 32)  # at 32x32
    level2 = 2 * 32 * 64 * 9 * 16 * 16 + 2 * 64 * 64 * 9 * 16 * 16 + 2 * 64 * 64 * 1 * 16 * 16  # 32->64, nin 1x1
    mid = 4 * (2 * 64 * 64 * 9 * 16 * 16)  # two res blocks, two convs each
    conv_out = 2 * 64 * 256 * 1 * 16 * 16
    quantizer = 2 * 256 * 256 * 1024  # 256 tokens x 256-d latent x 1024 codes
    tokenizer = conv_in + level0 + level1 + level2 + mid + conv_out + quantizer
    # encoder: 256 tokens, ceil(256 * 0.5) = 128 dropped -> 129 positions; width 64, MLP 256, 2 blocks
    enc_block = (2 * 129 * 64 * 192 + 2 * 129 * 64 * 129 + 2 * 129 * 129 * 64 + 2 * 129 * 64 * 64
                 + 2 * 129 * 64 * 256 + 2 * 129 * 256 * 64)
    encoder = 3 * 2 * enc_block
    # decoder: embed 64 -> 32 on 129 positions, then 2 blocks of width 32, MLP 128 on 257 positions
    dec_block = (2 * 257 * 32 * 96 + 2 * 257 * 32 * 257 + 2 * 257 * 257 * 32 + 2 * 257 * 32 * 32
                 + 2 * 257 * 32 * 128 + 2 * 257 * 128 * 32)
    decoder = 3 * (2 * 129 * 64 * 32 + 2 * dec_block)
    # head: fc 32 -> 64 (x3), logits against the detached 2025 x 64 table (forward + input gradient: x2)
    head = 3 * 2 * 257 * 32 * 64 + 2 * 2 * 257 * 64 * 2025
    return dict(tokenizer=tokenizer, encoder=encoder, decoder=decoder, head=head,
                total=tokenizer + encoder + decoder + head)


def tiny_config(bench):
    return bench.model_config('vit-b', dry_run=True)


def test_flop_counter_equals_the_hand_count(bench):
    counted = bench.flop_count.pretrain_flops(tiny_config(bench).model, 64)
    hand = hand_count_tiny()
    for part in ('tokenizer', 'encoder', 'decoder', 'head', 'total'):
        assert counted[part] == hand[part], part


def test_flop_counter_equals_torch_flop_counter_on_a_real_step(bench):
    """torch.utils.flop_counter counts the matmuls/convs the tiny model really runs (forward + backward)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    import mage_mm.register  # noqa: F401
    cfg = tiny_config(bench)
    model, _ = bench.build_pretrain(cfg, torch.device('cpu'), 64)
    model.train()
    batch = model.data_preprocessor(bench.batch_data(bench.random_images(3, 64, torch.device('cpu'), 0)), True)
    counter = FlopCounterMode(display=False)
    with sdpa_kernel(SDPBackend.MATH), counter:  # the math backend: its matmuls are visible to the counter
        loss = model(**batch, mode='loss')['loss']
        loss.backward()
    assert counter.get_total_flops() == 3 * bench.flop_count.pretrain_flops(cfg.model, 64)['total']

    # generation: one decoding step's network call (nothing dropped) and one VQGAN decode
    model.eval()
    ids = torch.randint(0, 1024, (2, 256))
    ids[:, ::3] = model.backbone.mask_id
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), counter:
        bench.generation_logits(model)(ids)
        bench.tokenizer_of(model).decode(ids.clamp(max=1023), grid=(16, 16))
    assert counter.get_total_flops() == 2 * bench.flop_count.generation_flops(cfg.model, 64, num_iter=1)['total']


@pytest.mark.slow
def test_script_generation_equals_the_generator(bench):
    """The script decodes through iterative_decode + MAGE.predict_logits; MAGEGenerator gives the same maps."""
    import mage_mm.register  # noqa: F401
    from mage_mm.models.generators.mage_generator import MAGEGenerator

    class Args:
        dry_run, image_size = True, 64

    cfg, model, options = bench.generation_setup(Args, torch.device('cpu'))
    parts = {k: v for k, v in cfg.model.items() if k in ('backbone', 'neck', 'head', 'target_generator')}
    generator = MAGEGenerator(**parts)
    generator.load_state_dict(model.state_dict(), strict=False)
    missing = set(generator.state_dict()) - set(model.state_dict())
    assert not missing, missing
    seeds = [0, 1, 5]
    ours = bench.generate_tokens(model, seeds, options)
    theirs = generator.generate_tokens(seeds)
    assert torch.equal(ours, theirs)
