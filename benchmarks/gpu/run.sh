#!/usr/bin/env bash
# On a lent GPU machine (bare image: Python 3.12, torch 2.11 CUDA 13, no OpenMMLab, no network), from the
# repository root:
#   bash benchmarks/gpu/run.sh [bench_gpu.py options, e.g. --budget-s 330]
# Needs, carried with the working tree (see benchmarks/gpu/README.md): .whl/ (one wheel per line of
# benchmarks/gpu/wheels.txt) and .parity/official_tiny_seed0.pt. Writes bench_gpu.json, bench_gpu_table.md,
# bench_gpu.log and nvidia-smi.txt to $OUT (default work_dirs/bench_gpu) and prints the table last.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-work_dirs/bench_gpu}
mkdir -p "$OUT"
SITE=${BENCH_SITE:-/tmp/site}

# every pinned wheel is there, in exactly one version (two versions of one package stop pip)
missing=0
while read -r line; do
  line=${line%%#*}; line=$(echo "$line" | tr -d '[:space:]'); [ -n "$line" ] || continue
  name=${line%%==*}; version=${line#*==}; stem=$(echo "$name" | tr '[:upper:]-' '[:lower:]_')
  n=$(ls .whl 2>/dev/null | tr '[:upper:]' '[:lower:]' | grep -c "^${stem}-${version}-" || true)
  if [ "$n" != 1 ]; then echo "run.sh: .whl/ has $n wheels for $name==$version (need 1)" >&2; missing=1; fi
done < benchmarks/gpu/wheels.txt
[ "$missing" = 0 ] || exit 2
[ -f .parity/official_tiny_seed0.pt ] || echo "run.sh: no .parity/official_tiny_seed0.pt: the parity check is skipped" >&2

python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || true
set -o pipefail
python3 benchmarks/gpu/bench_gpu.py --out "$OUT" --parity-dump .parity/official_tiny_seed0.pt "$@" 2>&1 \
  | tee "$OUT/bench_gpu.log"
