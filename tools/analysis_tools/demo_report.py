"""Assemble a Markdown report from mmengine work dirs, a tokenizer and stage results.

    python tools/analysis_tools/demo_report.py work_dirs/demo \
        --work-dir tokenizer=work_dirs/demo/tokenizer --work-dir mage=work_dirs/demo/mage \
        --tokenizer work_dirs/demo/tokenizer/vqgan_tokenizer.pth --images data/fashion_mnist/test \
        --results work_dirs/demo/results.json --picture "Generated samples=work_dirs/demo/samples.png"

Writes into OUT_DIR:

* ``curves_<name>.png`` per ``--work-dir NAME=DIR``: the training losses (and codebook
  monitoring, validation metrics when logged) from ``DIR/<run>/vis_data/scalars.json``;
* ``recon_grid.png``: real images (odd rows) above their tokenizer reconstructions;
* ``report.md``: the machine, stage timings and numbers from the ``--results`` JSON files
  (``{"timings": {"stage": seconds}, "wall_s": seconds, "<section>": {"key": value}, ...}``, merged in order),
  the demo's targets next to what was measured (:func:`target_rows`: FID / floor, the probe
  gap over the random encoder, guided vs unguided class accuracy, the total time), the final
  logged values of each work dir, and the pictures.
"""
import argparse
import datetime
import glob
import json
import os
import os.path as osp
import platform
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

IMAGE_EXTS = ('.png', '.jpg', '.jpeg', '.bmp', '.ppm')
MONITOR_KEYS = ('codebook_perplexity', 'codebook_used', 'dead_codes')
# the demo's targets (issue 10 item 7, issue 11 item 5): FID / floor, probe gap (points), guided class
# accuracy (%), whole-demo wall time (s)
TARGET_FID_RATIO = 1.8
TARGET_PROBE_GAP = 15.0
TARGET_GUIDED_ACCURACY = 60.0
TARGET_TOTAL_S = 15 * 60


# ---------------------------------------------------------------- logs
def read_scalars(work_dir: str) -> Tuple[List[dict], List[dict]]:
    """(train entries, val entries) of every run in ``work_dir``, oldest run first."""
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    if not files:
        raise FileNotFoundError(f'no */vis_data/scalars.json under {work_dir}: is it an mmengine work dir?')
    train, val = [], []
    for path in files:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                entry = json.loads(line)
                (train if 'iter' in entry else val).append(entry)
    return train, val


def final_values(train: List[dict], val: List[dict]) -> Dict[str, float]:
    """Last logged value of every loss / monitoring key, and the last validation metrics."""
    out: Dict[str, float] = {}
    for entry in train:
        for k, v in entry.items():
            if isinstance(v, (int, float)) and ('loss' in k or k in MONITOR_KEYS):
                out[k] = float(v)
    if train:
        out['iterations'] = float(train[-1]['iter'])
    if val:
        for k, v in val[-1].items():
            if isinstance(v, (int, float)) and k not in ('step', 'time', 'data_time'):
                out[k] = float(v)
    return out


def plot_curves(name: str, train: List[dict], val: List[dict], out_path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    loss_keys = sorted({k for e in train for k in e if 'loss' in k}, key=lambda k: (k != 'loss', k))
    monitor_keys = [k for k in MONITOR_KEYS if any(k in e for e in train)]
    # validation: the reconstruction metrics on two axes (dB and LPIPS); everything else is in the tables
    psnr_keys = sorted({k for e in val for k in e if 'psnr' in k})
    lpips_keys = sorted({k for e in val for k in e if 'lpips' in k})
    panels = 1 + bool(monitor_keys) + bool(psnr_keys or lpips_keys)
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4), squeeze=False)
    ax = axes[0][0]
    for k in loss_keys:
        pts = [(e['iter'], e[k]) for e in train if k in e]
        ax.plot(*zip(*pts), label=k, linewidth=2.2 if k == 'loss' else 1.2)
    ax.set(title=f'{name}: training losses', xlabel='iteration')
    ax.grid(alpha=0.3)
    if loss_keys:
        ax.legend(fontsize=8)
    col = 1
    if monitor_keys:
        ax = axes[0][col]
        for k in monitor_keys:
            pts = [(e['iter'], e[k]) for e in train if k in e]
            ax.plot(*zip(*pts), label=k)
        ax.set(title=f'{name}: codebook usage (train)', xlabel='iteration')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        col += 1
    if psnr_keys or lpips_keys:
        ax = axes[0][col]
        by_iter = all(e.get('step', 0) > 0 for e in val)  # log_metric_by_epoch=False logs the iteration
        xlabel = 'iteration' if by_iter else 'validation round'

        def series(key):
            rows = [e for e in val if key in e]
            return [e['step'] if by_iter else i + 1 for i, e in enumerate(rows)], [e[key] for e in rows]

        for k in psnr_keys:
            ax.plot(*series(k), marker='o', color='tab:blue', label=k)
        ax.set(title=f'{name}: validation', xlabel=xlabel, ylabel='PSNR (dB)')
        ax.grid(alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        top = ax
        if lpips_keys:
            top = ax.twinx()
            for k in lpips_keys:
                top.plot(*series(k), marker='s', color='tab:red', label=k)
            top.set_ylabel('LPIPS')
            h2, l2 = top.get_legend_handles_labels()
            handles, labels = handles + h2, labels + l2
        top.legend(handles, labels, fontsize=8, loc='center right')  # on the top axes: never painted over
    fig.tight_layout()
    fig.savefig(out_path, dpi=100)
    plt.close(fig)


# -------------------------------------------------------- reconstructions
def pick_images(folder: str, num: int) -> List[str]:
    """``num`` images of ``folder``, taken in turn from each sub-folder (class) in sorted order."""
    groups: Dict[str, List[str]] = {}
    for p in sorted(glob.glob(osp.join(folder, '**', '*'), recursive=True)):
        if p.lower().endswith(IMAGE_EXTS):
            groups.setdefault(osp.dirname(p), []).append(p)
    if not groups:
        raise FileNotFoundError(f'no images under {folder}')
    picked, depth = [], 0
    while len(picked) < num and any(depth < len(g) for g in groups.values()):
        picked += [g[depth] for _, g in sorted(groups.items()) if depth < len(g)]
        depth += 1
    return picked[:num]


def reconstruction_grid(tokenizer_path: str, image_dir: str, num: int, out_path: str, per_row: int = 8,
                        zoom: int = 4) -> Dict[str, float]:
    """Save real-over-reconstruction rows; return PSNR / LPIPS of the shown images."""
    import torch
    from PIL import Image

    from mage_mm.apis import load_tokenizer
    from mage_mm.evaluation.reconstruction import psnr
    from mage_mm.models.losses import LPIPS

    tokenizer = load_tokenizer(tokenizer_path)
    images = [np.asarray(Image.open(p).convert('RGB')) for p in pick_images(image_dir, num)]
    if len({im.shape for im in images}) != 1:
        raise ValueError(f'images under {image_dir} differ in size; the grid needs one size')
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        ids = tokenizer.encode(x)
        recon = tokenizer.decode(ids, grid=tokenizer.token_grid(*x.shape[-2:]))
        dist = LPIPS(input_range=(0.0, 1.0))(recon, x)
    real_u8 = (x * 255).round().byte().permute(0, 2, 3, 1).numpy()
    recon_u8 = (recon * 255).round().byte().permute(0, 2, 3, 1).numpy()
    n, h, w = len(images), x.shape[2], x.shape[3]
    cols = min(per_row, n)
    rows = -(-n // cols)
    pad = 2
    canvas = np.full((rows * 2 * (h + pad) + pad, cols * (w + pad) + pad, 3), 255, np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        top, left = pad + r * 2 * (h + pad), pad + c * (w + pad)
        canvas[top:top + h, left:left + w] = real_u8[i]
        canvas[top + h + pad:top + 2 * h + pad, left:left + w] = recon_u8[i]
    grid = Image.fromarray(canvas)
    grid = grid.resize((grid.width * zoom, grid.height * zoom), Image.NEAREST)
    grid.save(out_path)
    return dict(images=float(n), psnr=float(psnr(recon, x).mean()), lpips=float(dist.mean()),
                tokens_per_image=float(ids.shape[1]))


# ------------------------------------------------------------- report.md
def merge_results(paths: Sequence[str]) -> dict:
    merged: dict = {}
    for path in paths:
        with open(path) as f:
            data = json.load(f)
        if not isinstance(data, dict):
            raise ValueError(f'{path}: expected a JSON object, got {type(data).__name__}')
        for k, v in data.items():
            if isinstance(v, dict) and isinstance(merged.get(k), dict):
                merged[k].update(v)
            else:
                merged[k] = v
    return merged


def _find(section: dict, *needles: str) -> Optional[float]:
    """The value of the first key of ``section`` that contains every needle (None: none does)."""
    for k, v in section.items():
        if all(n in k for n in needles) and isinstance(v, (int, float)):
            return float(v)
    return None


def target_rows(results: dict) -> List[Tuple[str, str, str, str]]:
    """(quantity, measured, target, met) rows for the demo's targets found in ``results``.

    Reads the sections tools/demo.sh writes: ``FID (TF-Inception)`` (samples and
    real-training-image floor vs the test split), ``linear probe ...`` (pretrained and
    random encoder), ``class-conditional ...`` (class accuracy at s = 1 and at the
    chosen s) and ``timings``. A section that is absent gives no row.
    """
    rows = []
    yes = lambda ok: 'yes' if ok else '**no**'  # noqa: E731
    for name, sec in results.items():
        if not isinstance(sec, dict):
            continue
        if name.startswith('FID'):
            gen, floor = _find(sec, 'generated'), _find(sec, 'floor')
            if gen is not None and floor:
                ratio = gen / floor
                rows.append(('FID / floor (samples vs real training images, same size, same test reference)',
                             f'{gen:.1f} / {floor:.1f} = {ratio:.2f}', f'<= {TARGET_FID_RATIO:g}',
                             yes(ratio <= TARGET_FID_RATIO)))
        elif name.startswith('linear probe'):
            pre, rand = _find(sec, 'pretrained'), _find(sec, 'random')
            if pre is not None and rand is not None:
                gap = pre - rand
                rows.append(('linear probe gap: MAGE-pretrained minus random encoder (points)',
                             f'{pre:.1f} - {rand:.1f} = {gap:.1f}', f'>= {TARGET_PROBE_GAP:g}',
                             yes(gap >= TARGET_PROBE_GAP)))
        elif name.startswith('class-conditional'):
            unguided = _find(sec, 'class accuracy', 'no guidance')
            guided = next((float(v) for k, v in sec.items() if k.startswith('class accuracy')
                           and 'no guidance' not in k and isinstance(v, (int, float))), None)
            if unguided is not None and guided is not None:
                rows.append(('class accuracy of guided samples (%), vs unguided s = 1',
                             f'{guided:.1f} (s = 1: {unguided:.1f})',
                             f'>= {TARGET_GUIDED_ACCURACY:g} and above s = 1',
                             yes(guided >= TARGET_GUIDED_ACCURACY and guided > unguided)))
    timings = results.get('timings')
    if isinstance(timings, dict) and timings:
        total = wall_time(results)
        rows.append(('whole demo wall time (s, the stages before the report)', f'{total:.1f}', f'<= {TARGET_TOTAL_S}',
                     yes(total <= TARGET_TOTAL_S)))
    return rows


def wall_time(results: dict) -> float:
    """The demo's wall time: ``wall_s`` where the run recorded it (stages that overlap in the parallel lanes
    count once), else the sum of the stage timings."""
    if isinstance(results.get('wall_s'), (int, float)):
        return float(results['wall_s'])
    return sum(float(v) for v in results.get('timings', {}).values())


def _flatten(d: dict, prefix: str = '') -> List[Tuple[str, object]]:
    rows = []
    for k, v in d.items():
        key = f'{prefix}{k}'
        if isinstance(v, dict):
            rows += _flatten(v, key + '/')
        else:
            rows.append((key, v))
    return rows


def _fmt(v) -> str:
    if isinstance(v, float):
        return f'{v:.4g}' if abs(v) < 1e5 else f'{v:.3e}'
    return str(v)


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            names = [ln.split(':', 1)[1].strip() for ln in f if ln.startswith('model name')]
        if names:
            cpu = names[0]
    except OSError:
        pass
    try:
        import torch
        tv = f'torch {torch.__version__}, {torch.get_num_threads()} threads'
    except ImportError:
        tv = 'torch not importable'
    return f'{cpu}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}, ' \
           f'Python {platform.python_version()}, {tv}'


def write_report(out_dir: str, title: str, results: dict, logs: Dict[str, Dict[str, float]],
                 curves: Dict[str, str], recon: Optional[Dict[str, float]], pictures: List[Tuple[str, str]]) -> str:
    lines = [f'# {title}', '', f'Generated {datetime.datetime.now():%Y-%m-%d %H:%M} on: {machine_description()}.', '']
    timings = results.get('timings')
    if isinstance(timings, dict) and timings:
        lines += ['## Stage timings', '', '| stage | wall time (s) |', '|---|---:|']
        lines += [f'| {k} | {float(v):.1f} |' for k, v in timings.items()]
        lines += [f'| **total** | **{sum(float(v) for v in timings.values()):.1f}** |']
        if isinstance(results.get('wall_s'), (int, float)):
            lines.append(f'| **wall time** (stages that ran side by side count once) | **{results["wall_s"]:.1f}** |')
        lines.append('')
    targets = target_rows(results)
    if targets:
        lines += ['## Targets', '', '| target | measured | wanted | met |', '|---|---:|---:|---|']
        lines += [f'| {q} | {m} | {w} | {ok} |' for q, m, w, ok in targets]
        lines.append('')
    others = {k: v for k, v in results.items() if k not in ('timings', 'wall_s')}
    if others:
        lines += ['## Results', '', '| quantity | value |', '|---|---:|']
        lines += [f'| {k} | {_fmt(v)} |' for k, v in _flatten(others)]
        lines.append('')
    if logs:
        lines += ['## Final logged values', '']
        for name, values in logs.items():
            lines += [f'**{name}**', '', '| key | value |', '|---|---:|']
            lines += [f'| {k} | {_fmt(v)} |' for k, v in values.items()]
            lines.append('')
    if recon is not None:
        lines += ['## Tokenizer reconstructions', '',
                  f'Odd rows: real held-out images; even rows: decoded from their {int(recon["tokens_per_image"])} '
                  f'tokens. On these {int(recon["images"])} images: PSNR {recon["psnr"]:.2f} dB, '
                  f'LPIPS {recon["lpips"]:.3f}.', '', '![reconstructions](recon_grid.png)', '']
    if pictures:
        lines += ['## Pictures', '']
        for caption, path in pictures:
            lines += [f'**{caption}**', '', f'![{caption}]({path})', '']
    if curves:
        lines += ['## Training curves', '']
        for name, path in curves.items():
            lines += [f'![{name}]({path})', '']
    report = osp.join(out_dir, 'report.md')
    with open(report, 'w') as f:
        f.write('\n'.join(lines))
    return report


def _pairs(values: Sequence[str], flag: str) -> List[Tuple[str, str]]:
    out = []
    for v in values or []:
        if '=' not in v:
            raise SystemExit(f'error: {flag} expects NAME=PATH, got {v!r}')
        out.append(tuple(v.split('=', 1)))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out_dir', help='where report.md and the PNGs go')
    parser.add_argument('--work-dir', action='append', metavar='NAME=DIR', help='an mmengine work dir to plot')
    parser.add_argument('--tokenizer', help='tokenizer checkpoint (exported, Runner checkpoint or work dir)')
    parser.add_argument('--images', help='image folder for the reconstruction grid (e.g. the test split)')
    parser.add_argument('--num-recon', type=int, default=16, help='images in the reconstruction grid')
    parser.add_argument('--zoom', type=int, default=4, help='nearest-neighbour upscaling of the grid')
    parser.add_argument('--results', nargs='*', default=[], help='JSON files with stage numbers (merged in order)')
    parser.add_argument('--picture', action='append', metavar='CAPTION=PNG', help='another picture to show')
    parser.add_argument('--title', default='MAGE demo report')
    args = parser.parse_args(argv)
    os.makedirs(args.out_dir, exist_ok=True)
    if bool(args.tokenizer) != bool(args.images):
        parser.error('--tokenizer and --images go together')

    logs, curves = {}, {}
    for name, work_dir in _pairs(args.work_dir, '--work-dir'):
        train, val = read_scalars(work_dir)
        logs[name] = final_values(train, val)
        fname = f'curves_{name}.png'
        plot_curves(name, train, val, osp.join(args.out_dir, fname))
        curves[name] = fname
    recon = None
    if args.tokenizer:
        recon = reconstruction_grid(args.tokenizer, args.images, args.num_recon,
                                    osp.join(args.out_dir, 'recon_grid.png'), zoom=args.zoom)
    pictures = []
    for caption, path in _pairs(args.picture, '--picture'):
        if not osp.isfile(path):
            raise SystemExit(f'error: picture not found: {path}')
        pictures.append((caption, osp.relpath(path, args.out_dir)))
    results = merge_results(args.results)
    report = write_report(args.out_dir, args.title, results, logs, curves, recon, pictures)
    print(f'wrote {report}' + (f', {len(curves)} curve plot(s)' if curves else '') +
          (', recon_grid.png' if recon else ''))
    return 0


if __name__ == '__main__':
    sys.exit(main())
