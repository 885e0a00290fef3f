#!/usr/bin/env bash
# Demo stages on real data, each an ordinary tools/ command on an ordinary config:
#   [1] Fashion-MNIST (Debian) -> 32 px RGB ImageNet-style folders      tools/dataset_converters/prepare_fashion_mnist.py
#   [2] train the tiny MAGE tokenizer (L1 + LPIPS + VQ, dead-code restarts)   tools/train.py configs/tokenizer/...
#   [3] train a tiny MAGE with that tokenizer                           tools/train.py configs/mage/..._fashion-mnist-32px.py
#   [4] report: loss curves, reconstruction grid, numbers -> $WORK/report.md   tools/analysis_tools/demo_report.py
# Each stage's wall time goes to $WORK/results.json ("timings"), which the report shows; other
# stages may add their numbers as $WORK/results/*.json and pictures as $WORK/pictures/*.png.
#
#   bash tools/demo_stages.sh                  # the full stages (6.6 min measured on 2 CPU cores)
#   DEMO_SHORT=1 bash tools/demo_stages.sh     # a few iterations per stage (tests; well under a minute)
# Environment: PYTHON (default python), WORK_DIR (work_dirs/demo), DATA_DIR (data/fashion_mnist),
# DEMO_STAGES (e.g. "1 2" to run only some stages).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
WORK=${WORK_DIR:-work_dirs/demo}
DATA=${DATA_DIR:-data/fashion_mnist}
STAGES=${DEMO_STAGES:-1 2 3 4}
TOK_CFG=configs/tokenizer/vqgan_tiny-f4_1xb32-300iters_fashion-mnist-32px.py
MAGE_CFG=configs/mage/mage_vit-tiny_1xb32-2000iters_fashion-mnist-32px.py

if [ "${DEMO_SHORT:-0}" = "1" ]; then
  NUM_TRAIN=64; NUM_TEST=32; TOK_ITERS=4; MAGE_ITERS=4
  TOK_SHORT=(train_dataloader.batch_size=8 val_dataloader.batch_size=32 model.usage_window=2
             train_cfg.val_interval=4 default_hooks.logger.interval=1)
  MAGE_SHORT=(train_dataloader.batch_size=8 default_hooks.logger.interval=1)
else
  NUM_TRAIN=${DEMO_NUM_TRAIN:-5000}; NUM_TEST=${DEMO_NUM_TEST:-1000}; TOK_ITERS=300; MAGE_ITERS=2000
  TOK_SHORT=(); MAGE_SHORT=()
fi
TOKENIZER_CKPT=$WORK/tokenizer/iter_${TOK_ITERS}.pth
mkdir -p "$WORK"
RESULTS=$WORK/results.json

record_time() {  # record_time STAGE SECONDS: merge into $RESULTS["timings"]
  "$PYTHON" - "$RESULTS" "$1" "$2" <<'EOF'
import json, os, sys
path, stage, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
data = json.load(open(path)) if os.path.isfile(path) else {}
data.setdefault('timings', {})[stage] = round(seconds, 1)
json.dump(data, open(path, 'w'), indent=1)
EOF
}

run_stage() {  # run_stage NUMBER NAME COMMAND...
  local num=$1 name=$2
  shift 2
  case " $STAGES " in *" $num "*) ;; *) echo "== [$num/4] $name: skipped (DEMO_STAGES=$STAGES)"; return 0 ;; esac
  echo "== [$num/4] $name"
  echo "   \$ $*"
  local start end
  start=$(date +%s.%N)
  "$@"
  end=$(date +%s.%N)
  local secs
  secs=$(awk "BEGIN {print $end - $start}")
  record_time "$num. $name" "$secs"
  printf '== [%s/4] %s: done in %.1f s\n' "$num" "$name" "$secs"
}

run_stage 1 "data: Fashion-MNIST" \
  "$PYTHON" tools/dataset_converters/prepare_fashion_mnist.py "$DATA" --size 32 \
    --num-train "$NUM_TRAIN" --num-test "$NUM_TEST"

run_stage 2 "tokenizer training" \
  "$PYTHON" tools/train.py "$TOK_CFG" --work-dir "$WORK/tokenizer" --cfg-options \
    train_dataloader.dataset.data_root="$DATA" val_dataloader.dataset.data_root="$DATA" \
    train_cfg.max_iters="$TOK_ITERS" \
    default_hooks.checkpoint.interval="$TOK_ITERS" ${TOK_SHORT[@]+"${TOK_SHORT[@]}"}

run_stage 3 "MAGE pretraining" \
  "$PYTHON" tools/train.py "$MAGE_CFG" --work-dir "$WORK/mage" --cfg-options \
    model.target_generator.init_cfg.checkpoint="$TOKENIZER_CKPT" model.target_generator.init_cfg.prefix=tokenizer. \
    train_dataloader.dataset.data_root="$DATA" train_cfg.max_iters="$MAGE_ITERS" \
    default_hooks.checkpoint.interval="$MAGE_ITERS" ${MAGE_SHORT[@]+"${MAGE_SHORT[@]}"}

report() {
  local extra=() f
  for f in "$WORK"/results/*.json; do [ -f "$f" ] && extra+=("$f"); done
  local pics=()
  for f in "$WORK"/pictures/*.png; do [ -f "$f" ] && pics+=(--picture "$(basename "${f%.png}")=$f"); done
  "$PYTHON" tools/analysis_tools/demo_report.py "$WORK" \
    --work-dir tokenizer="$WORK/tokenizer" --work-dir mage="$WORK/mage" \
    --tokenizer "$TOKENIZER_CKPT" --images "$DATA/test" --num-recon 16 \
    --results "$RESULTS" ${extra[@]+"${extra[@]}"} ${pics[@]+"${pics[@]}"}
}
run_stage 4 "report" report
echo "== done: $WORK/report.md (stage timings in $RESULTS)"
