#!/usr/bin/env bash
# `make demo`: the whole of MAGE on real images (Fashion-MNIST from Debian) on a laptop-class CPU.
# Every stage is an ordinary tools/ command on an ordinary config, so this script is also the tutorial:
#   [1] Fashion-MNIST -> 32 px RGB ImageNet-style folders        tools/dataset_converters/prepare_fashion_mnist.py
#   [2] train the tiny tokenizer, 250 iterations (L1 + LPIPS + VQ, code restarts)  tools/train.py configs/tokenizer/...
#   [3] token cache: every training image tokenised once, in 8 augmented views (the training pipeline's crops),
#       with its class
#                                                                 tools/dataset_converters/pretokenize.py
#   [4] pretrain the "mini" MAGE (4 x 192-d encoder, 2 x 128-d decoder, no dropout), 3000 iterations, from the cache in
#       precision 'auto' (bf16 where the CPU runs it natively, else fp32; the step skips the tokenizer);
#       DEMO_MODEL=tiny: the tiny MAGE (2 x 64-d, 1 x 32-d) in fp32
#                                                                 tools/train.py configs/mage/..._fashion-mnist-tokens-k8-32px.py
#   [5] generate samples by iterative decoding + a grid           tools/generate.py configs/generation/...
#   [6] FID of the samples vs 300 held-out test images (offline TF-Inception), and of as many real
#       training images (the floor at this sample size)           tools/analysis_tools/{fid_reference_stats,compute_fid}.py
#   [7] linear probe of the MAGE encoder vs the same probe on a randomly initialised encoder
#                                                                 tools/train.py configs/mage/benchmarks/..._fashion-mnist-32px.py
#   [8] class-conditional MAGE: a LeNet-5 judge trained on the real training split, the MAGE fine-tuned with a
#       class embedding (encoder frozen), guidance chosen on selection samples, 10-row grid, class accuracy at
#       s = 1 and the chosen s, FID vs test                       tools/demo_conditional.sh
#   [9] report: numbers, sample grid, reconstruction grid, loss curves -> $WORK/report.md
#                                                                 tools/analysis_tools/demo_report.py
# The mini model's decoding setting (16 steps, arccos mask schedule, choice temperature 1, sampling temperature 0.9)
# and the tokenizer's 250 iterations were chosen on the training split only (FID of the samples against statistics
# of 500 training images: 167 with 250 tokenizer iterations, 178 with 300; for the 3000-iteration MAGE, 16 / 0.8 the
# best of 11 settings with the cosine schedule, then arccos 155 against cosine 170, mean of two seeds; the generation
# config lists them); the test split is only scored.
#
#   bash tools/demo.sh                  # the full demo (16-18 min on the 2 AMD Zen 5 cores of the README's runs,
#                                       # about 37 min on 2 AVX2-only cores without native bf16)
#   DEMO_MODEL=tiny bash tools/demo.sh  # the smaller model (12-22 min; blobs, not garments)
#   DEMO_SHORT=1 bash tools/demo.sh     # a few iterations per stage (the tests run this)
# Environment: PYTHON (default python), WORK_DIR (work_dirs/demo), DATA_DIR (data/fashion_mnist),
# DEMO_STAGES (e.g. "1 2" to run only some stages), DEMO_MODEL (tiny or mini), DEMO_LANES (2: stages 5-8 in two
# lanes side by side, one thread each, the default; 1: one after the other).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
WORK=${WORK_DIR:-work_dirs/demo}
DATA=${DATA_DIR:-data/fashion_mnist}
STAGES=${DEMO_STAGES:-1 2 3 4 5 6 7 8 9}
# speed over peak RSS: keep glibc's free heap between tokenizer calls (README "Performance", memory)
export MAGE_MM_TRIM=${MAGE_MM_TRIM:-0}
NSTAGES=9
TOK_CFG=configs/tokenizer/vqgan_tiny-f4_1xb32-300iters_fashion-mnist-32px.py
# DEMO_MODEL: "mini" (default: garments within the 15-minute budget) or "tiny" (blobs; see README).
# The image config defines the model and the views the cache holds; the tokens config trains it from the cache.
DEMO_MODEL=${DEMO_MODEL:-mini}
case "$DEMO_MODEL" in
  tiny)
    MAGE_IMG_CFG=configs/mage/mage_vit-tiny_1xb32-2000iters_fashion-mnist-32px.py
    MAGE_CFG=configs/mage/mage_vit-tiny_1xb32-2000iters_fashion-mnist-tokens-k8-32px.py
    GEN_CFG=configs/generation/mage-gen_vit-tiny_iter8-temp6_photo-crops-32px.py
    PROBE_CFG=configs/mage/benchmarks/vit-tiny_1xb64-linear-coslr-8e_fashion-mnist-32px.py
    FULL_MAGE_ITERS=2000 ;;
  mini)
    MAGE_IMG_CFG=configs/mage/mage_vit-mini_1xb64-3000iters_fashion-mnist-32px.py
    MAGE_CFG=configs/mage/mage_vit-mini_1xb64-3000iters_fashion-mnist-tokens-k8-32px.py
    GEN_CFG=configs/generation/mage-gen_vit-mini_iter16-temp1-samp0.9-arccos_fashion-mnist-32px.py
    PROBE_CFG=configs/mage/benchmarks/vit-mini_1xb64-linear-coslr-2e_fashion-mnist-32px.py
    FULL_MAGE_ITERS=3000 ;;
  *) echo "DEMO_MODEL must be tiny or mini, got '$DEMO_MODEL'" >&2; exit 2 ;;
esac

if [ "${DEMO_SHORT:-0}" = "1" ]; then
  NUM_TRAIN=64; NUM_TEST=32; TOK_ITERS=4; VIEWS=2; MAGE_ITERS=4; NUM_GEN=8; NUM_FID_REF=32
  TOK_SHORT=(train_dataloader.batch_size=8 val_dataloader.batch_size=32 model.usage_window=2
             train_cfg.val_interval=4 default_hooks.logger.interval=1)
  MAGE_SHORT=(train_dataloader.batch_size=8 default_hooks.logger.interval=1)
  PROBE_SHORT=(train_cfg.max_epochs=1 train_cfg.val_interval=1 param_scheduler.0.end=1 param_scheduler.1.begin=1
               param_scheduler.1.end=2 default_hooks.logger.interval=1)
else
  NUM_TRAIN=${DEMO_NUM_TRAIN:-5000}; NUM_TEST=${DEMO_NUM_TEST:-1000}; TOK_ITERS=${DEMO_TOK_ITERS:-250}; VIEWS=8
  MAGE_ITERS=$FULL_MAGE_ITERS
  NUM_GEN=${DEMO_NUM_GEN:-100}; NUM_FID_REF=${DEMO_NUM_FID_REF:-300}
  TOK_SHORT=(); MAGE_SHORT=(); PROBE_SHORT=()
  TOK_SCHED=(param_scheduler.1.end="$TOK_ITERS")  # the cosine decay ends with the (shortened) run
fi
TOKENIZER_CKPT=$WORK/tokenizer/iter_${TOK_ITERS}.pth
MAGE_CKPT=$WORK/mage/iter_${MAGE_ITERS}.pth
TOKENS=$WORK/tokens_k${VIEWS}
mkdir -p "$WORK/results" "$WORK/pictures"
RESULTS=$WORK/results.json
# a complete run starts a fresh record; a partial one (DEMO_STAGES) adds to it
[ "$STAGES" = "1 2 3 4 5 6 7 8 9" ] && rm -f "$RESULTS" "$WORK"/results/*.json "$WORK"/pictures/*.png

# What the configs' precision = 'auto' resolves to here (bf16 where the CPU runs it natively, else fp32), in the
# report; on a CPU without native bf16 the mini model trains in fp32, well over the 15 minutes
AUTO_PRECISION=$("$PYTHON" - "$WORK/results/precision.json" <<'EOF'
import json, os, sys
from mage_mm.utils.precision import native_bf16, resolve_precision
out = {'precision': {"the configs' 'auto' on this CPU": resolve_precision('auto', 'cpu'),
                     'native bf16 (oneDNN: AVX512-BF16 or AMX)': 'yes' if native_bf16('cpu') else 'no'}}
with open(sys.argv[1] + '.tmp', 'w') as f:
    json.dump(out, f, indent=1)
os.replace(sys.argv[1] + '.tmp', sys.argv[1])
print(out['precision']["the configs' 'auto' on this CPU"])
EOF
)
echo "== precision 'auto' resolves to $AUTO_PRECISION on this CPU"
if [ "$AUTO_PRECISION" = fp32 ] && [ "$DEMO_MODEL" = mini ] && [ "${DEMO_SHORT:-0}" != 1 ]; then
  echo "   this CPU has no native bf16 (oneDNN finds no AVX512-BF16 / AMX): the mini model trains in fp32, about" \
       "37 min on 2 AVX2 cores (measured on an AMD Zen 3) against 16-18 with native bf16; DEMO_MODEL=tiny: about 22 min"
fi

record_time() {  # record_time STAGE SECONDS [add]: merge into $RESULTS["timings"] (add: to the stage's time so far)
  "$PYTHON" - "$RESULTS" "$1" "$2" "${3:-}" <<'EOF'
import fcntl, json, os, re, sys
path, stage, seconds, add = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4] == 'add'
with open(path + '.lock', 'w') as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)  # the two lanes of stages 5-8 record side by side
    data = json.load(open(path)) if os.path.isfile(path) else {}
    timings = data.setdefault('timings', {})
    timings[stage] = round(seconds + (timings.get(stage, 0.0) if add else 0.0), 1)
    number = lambda key: int(re.match(r'\d+', key).group()) if re.match(r'\d+', key) else 99  # noqa: E731
    data['timings'] = dict(sorted(timings.items(), key=lambda kv: number(kv[0])))
    with open(path + '.tmp', 'w') as f:
        json.dump(data, f, indent=1)
    os.replace(path + '.tmp', path)
EOF
}

selected() { case " $STAGES " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

timed() {  # timed STAGE_KEY LABEL MODE COMMAND...: run COMMAND, record its seconds (MODE add: added to the stage's)
  local key=$1 label=$2 mode=$3 start end secs
  shift 3
  start=$(date +%s.%N)
  "$@"
  end=$(date +%s.%N)
  secs=$(awk "BEGIN {print $end - $start}")
  record_time "$key" "$secs" "$mode"
  printf '== %s: done in %.1f s\n' "$label" "$secs"
}

run_stage() {  # run_stage NUMBER NAME COMMAND...
  local num=$1 name=$2
  shift 2
  selected "$num" || { echo "== [$num/$NSTAGES] $name: skipped (DEMO_STAGES=$STAGES)"; return 0; }
  echo "== [$num/$NSTAGES] $name"
  echo "   \$ $*"
  timed "$num. $name" "[$num/$NSTAGES] $name" set "$@"
}

run_part() {  # run_part NUMBER NAME PART COMMAND...: one part of a stage; its time adds to the stage's
  local num=$1 name=$2 part=$3
  shift 3
  selected "$num" || return 0
  echo "== [$num/$NSTAGES] $name, $part"
  timed "$num. $name" "[$num/$NSTAGES] $name, $part" add "$@"
}
DEMO_START=$(date +%s.%N)

run_stage 1 "data: Fashion-MNIST" \
  "$PYTHON" tools/dataset_converters/prepare_fashion_mnist.py "$DATA" --size 32 \
    --num-train "$NUM_TRAIN" --num-test "$NUM_TEST"

run_stage 2 "tokenizer training" \
  "$PYTHON" tools/train.py "$TOK_CFG" --work-dir "$WORK/tokenizer" --cfg-options \
    train_dataloader.dataset.data_root="$DATA" val_dataloader.dataset.data_root="$DATA" \
    train_cfg.max_iters="$TOK_ITERS" train_cfg.val_interval="$TOK_ITERS" \
    default_hooks.checkpoint.interval="$TOK_ITERS" ${TOK_SCHED[@]+"${TOK_SCHED[@]}"} ${TOK_SHORT[@]+"${TOK_SHORT[@]}"}

pretokenize() {
  # a cache is tied to its tokenizer (content hash): a fresh tokenizer needs a fresh cache
  rm -rf "$TOKENS"
  # --labels: the classes too, so that stage 8's class-conditional fine-tuning reads the cache as well
  "$PYTHON" tools/dataset_converters/pretokenize.py "$MAGE_IMG_CFG" --out "$TOKENS" --views "$VIEWS" --labels \
    --batch-size 250 --no-progress --cfg-options train_dataloader.dataset.data_root="$DATA" \
    model.backbone.tokenizer.init_cfg.checkpoint="$TOKENIZER_CKPT"
}
run_stage 3 "token cache" pretokenize

run_stage 4 "MAGE pretraining" \
  "$PYTHON" tools/train.py "$MAGE_CFG" --work-dir "$WORK/mage" --cfg-options \
    model.backbone.tokenizer.init_cfg.checkpoint="$TOKENIZER_CKPT" model.backbone.tokenizer.init_cfg.prefix=tokenizer. \
    train_dataloader.dataset.cache_dir="$TOKENS" train_cfg.max_iters="$MAGE_ITERS" \
    default_hooks.checkpoint.interval="$MAGE_ITERS" ${MAGE_SHORT[@]+"${MAGE_SHORT[@]}"}

generate() {
  "$PYTHON" tools/generate.py "$GEN_CFG" "$MAGE_CKPT" --num-images "$NUM_GEN" --out-dir "$WORK/samples" \
    --batch-size 50 --grid 64 --overwrite
  cp "$WORK/samples/grid.png" "$WORK/pictures/samples.png"
}

pick_balanced() {  # pick_balanced SRC DST N: the first N images of SRC's class folders taken round-robin
  # (class-major order would make a reference of the first classes only); awk reads all of its input: no SIGPIPE
  rm -rf "$2" && mkdir -p "$2"
  find "$1" -name '*.png' | sort | awk -F/ '{r[$(NF-1)]++; print r[$(NF-1)] "\t" $0}' | sort -s -n -k1,1 \
    | awk -v n="$3" 'NR <= n' | cut -f2 | xargs -I{} cp {} "$2/"
}

fid() {
  # reference: held-out test images; floor: as many real *training* images as samples (both balanced over classes)
  pick_balanced "$DATA/test" "$WORK/fid/test_ref" "$NUM_FID_REF"
  "$PYTHON" tools/analysis_tools/fid_reference_stats.py "$WORK/fid/test_ref" --out "$WORK/fid/test_stats.npz"
  pick_balanced "$DATA/train" "$WORK/fid/real_train" "$NUM_GEN"
  "$PYTHON" tools/analysis_tools/compute_fid.py "$WORK/samples" "$WORK/fid/test_stats.npz" --out "$WORK/fid/samples.json"
  "$PYTHON" tools/analysis_tools/compute_fid.py "$WORK/fid/real_train" "$WORK/fid/test_stats.npz" \
    --out "$WORK/fid/real_train.json"
  "$PYTHON" - "$WORK" <<'EOF'
import json, os.path as osp, sys
work = sys.argv[1]
gen, real = (json.load(open(osp.join(work, 'fid', f))) for f in ('samples.json', 'real_train.json'))
out = {'FID (TF-Inception)': {
    f"generated ({gen['num_generated']}) vs test ({gen['num_reference']})": round(gen['fid'], 2),
    f"real train ({real['num_generated']}) vs test: the floor at this size": round(real['fid'], 2)}}
json.dump(out, open(osp.join(work, 'results', 'fid.json'), 'w'), indent=1)
print(json.dumps(out, indent=1))
EOF
}

probe() {
  local common=(train_dataloader.dataset.data_root="$DATA" val_dataloader.dataset.data_root="$DATA"
                test_dataloader.dataset.data_root="$DATA" ${PROBE_SHORT[@]+"${PROBE_SHORT[@]}"})
  "$PYTHON" tools/train.py "$PROBE_CFG" --work-dir "$WORK/probe_mage" --cfg-options \
    model.backbone.init_cfg.checkpoint="$MAGE_CKPT" "${common[@]}"
  # the same probe on a randomly initialised encoder (same trained tokenizer): what pretraining adds
  "$PYTHON" tools/train.py "$PROBE_CFG" --work-dir "$WORK/probe_random" --cfg-options \
    model.backbone.init_cfg=None model.backbone.tokenizer.init_cfg.type=Pretrained \
    model.backbone.tokenizer.init_cfg.checkpoint="$MAGE_CKPT" model.backbone.tokenizer.init_cfg.prefix=backbone.tokenizer. \
    "${common[@]}"
  "$PYTHON" - "$WORK" <<'EOF'
import glob, json, os.path as osp, sys
work = sys.argv[1]

def last_top1(run):
    logs = sorted(glob.glob(osp.join(work, run, '*', 'vis_data', 'scalars.json')))
    vals = [json.loads(line) for line in open(logs[-1])]
    return [v for v in vals if 'accuracy/top1' in v][-1]['accuracy/top1']

out = {'linear probe, Fashion-MNIST test top-1 (%)': {
    'MAGE-pretrained encoder': round(last_top1('probe_mage'), 2),
    'randomly initialised encoder': round(last_top1('probe_random'), 2)}}
json.dump(out, open(osp.join(work, 'results', 'probe.json'), 'w'), indent=1)
print(json.dumps(out, indent=1))
EOF
}

conditional() {  # conditional STEP...: steps of tools/demo_conditional.sh (a judge, b fine-tuning, c d sampling)
  PYTHON="$PYTHON" WORK="$WORK" DATA="$DATA" MAGE_CKPT="$MAGE_CKPT" DEMO_MODEL="$DEMO_MODEL" TOKENS="$TOKENS" \
    DEMO_COND_STEPS="$*" bash tools/demo_conditional.sh
}
COND="class-conditional generation"

# Stages 5-8 in two lanes side by side, one thread each: their processes are small and spend much of their time
# in single-threaded Python (imports, data loading, hooks), so two of them on the two cores finish sooner than
# one after the other on both (two probes: 62 s side by side against 82 s in a row, measured). Lane 1: samples,
# FID, the judge; lane 2: the probes, the class-conditional fine-tuning; then the conditional samples on both cores.
# DEMO_LANES=1 runs the same stages one after the other, each on every core.
lane_samples() {
  run_stage 5 "generation" generate
  run_stage 6 "FID" fid
  run_part 8 "$COND" "a) judge" conditional a
}
lane_probes() {
  run_stage 7 "linear probe: pretrained vs random" probe
  run_part 8 "$COND" "b) fine-tuning" conditional b
}
selected 8 && record_time "8. $COND" 0
if [ "${DEMO_LANES:-2}" = "2" ]; then
  LANE2_LOG=$WORK/lane2.log
  echo "== stages 5-8 in two lanes, one thread each; lane 2 (probes, conditional fine-tuning) logs to $LANE2_LOG"
  ( set -e; export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1; lane_probes ) > "$LANE2_LOG" 2>&1 &
  lane2=$!
  set +e
  ( set -e; export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1; lane_samples )
  rc1=$?
  wait "$lane2"
  rc2=$?
  set -e
  echo "== lane 2's output:"
  cat "$LANE2_LOG"
  if [ "$rc1" != 0 ] || [ "$rc2" != 0 ]; then
    echo "stages 5-8 failed: lane 1 exit status $rc1, lane 2 exit status $rc2 (its log: $LANE2_LOG)" >&2
    exit 1
  fi
elif [ "${DEMO_LANES:-2}" = "1" ]; then
  lane_samples
  lane_probes
else
  echo "DEMO_LANES must be 1 or 2, got '$DEMO_LANES'" >&2; exit 2
fi
run_part 8 "$COND" "c-d) guidance and samples" conditional c d
if selected 8; then
  printf '== [8/%s] %s: done in %.1f s (its parts together)\n' "$NSTAGES" "$COND" "$("$PYTHON" -c \
    "import json, sys; print(json.load(open(sys.argv[1]))['timings']['8. $COND'])" "$RESULTS")"
fi
if [ "$STAGES" = "1 2 3 4 5 6 7 8 9" ]; then  # the demo's wall time, lanes counted once
  "$PYTHON" - "$RESULTS" "$(awk "BEGIN {print $(date +%s.%N) - $DEMO_START}")" <<'EOF'
import json, os, sys
data = json.load(open(sys.argv[1]))
data['wall_s'] = round(float(sys.argv[2]), 1)
with open(sys.argv[1] + '.tmp', 'w') as f:
    json.dump(data, f, indent=1)
os.replace(sys.argv[1] + '.tmp', sys.argv[1])
EOF
fi

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
run_stage 9 "report" report
echo "== done: $WORK/report.md (stage timings in $RESULTS)"
