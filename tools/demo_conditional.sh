#!/usr/bin/env bash
# The class-conditional stage of `make demo` (tools/demo.sh runs it after the unconditional stages):
#   a) the judge: mmpretrain's LeNet-5 trained on the real Fashion-MNIST training split (scored on the test split)
#   b) class-conditional fine-tuning of the demo's MAGE (MAGECond: class embedding fed to the decoder, encoder
#      frozen, label dropout 0.1), the mini from the labelled token cache
#                                                          tools/train.py configs/mage/mage-cond_..._fashion-mnist-*32px.py
#   c) guidance scale chosen on the training side only: samples at each scale of $SCALES from selection seeds,
#      judged by the classifier trained on the training split (no test image is used to choose)
#   d) fresh samples (other seeds), 10 classes x $NUM_PER_CLASS, at s = 1 (no guidance) and at the chosen s:
#      class accuracy under the judge, FID vs the held-out test split, a grid with one row per class, next to
#      the judge's accuracy on real test images          tools/generate.py --classes all, tools/analysis_tools/class_accuracy.py
# Environment (set by tools/demo.sh): PYTHON, WORK, DATA, TOKENS (stage 3's labelled token cache), MAGE_CKPT, DEMO_SHORT, DEMO_MODEL (mini or tiny); DEMO_SCALES (guidance scales
# to choose from, default "6 12" for the mini, "1 3 6 12 20" for the tiny; s = 1 is always measured in d), DEMO_COND_REUSE=1 (reuse the judge and the fine-tuned model),
# DEMO_COND_STEPS (which of the steps a b c d to run, default "a b c d"; c and d always run together: tools/demo.sh
# runs a and b in its two parallel lanes, then c d).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
WORK=${WORK:-work_dirs/demo}
TOKENS=${TOKENS:-$WORK/tokens_k8}
DATA=${DATA:-data/fashion_mnist}
CLS_CFG=configs/classifier/lenet5_1xb64-12e_fashion-mnist-32px.py
if [ "${DEMO_MODEL:-mini}" = "mini" ]; then
  MAGE_CKPT=${MAGE_CKPT:-$WORK/mage/iter_3000.pth}
  DEFAULT_SCALES="6 12"  # the mini's selection at s = 1 / 3 / 6 / 12 / 20 gave 24 / 64 / 72 / 74 / 56 %
  # from stage 3's labelled token cache (the step skips the tokenizer)
  COND_CFG=configs/mage/mage-cond_vit-mini_1xb32-600iters_fashion-mnist-tokens-k8-32px.py
  COND_DATA=(train_dataloader.dataset.cache_dir="$TOKENS")
  COND_GEN_CFG=configs/generation/mage-cond-gen_vit-mini_iter8-temp1_fashion-mnist-32px.py
else
  MAGE_CKPT=${MAGE_CKPT:-$WORK/mage/iter_2000.pth}
  COND_CFG=configs/mage/mage-cond_vit-tiny_1xb32-600iters_fashion-mnist-32px.py  # from the images
  COND_DATA=(train_dataloader.dataset.data_root="$DATA")
  COND_GEN_CFG=configs/generation/mage-cond-gen_vit-tiny_iter8-temp6_fashion-mnist-32px.py
  DEFAULT_SCALES="1 3 6 12 20"
fi
if [ "${DEMO_SHORT:-0}" = "1" ]; then
  CLS_EPOCHS=1; COND_ITERS=4; SCALES="1 3"; NUM_SELECT=1; NUM_PER_CLASS=2; NUM_FID_REF=32
  COND_SHORT=(train_dataloader.batch_size=8 default_hooks.logger.interval=1 param_scheduler.0.end=2
              param_scheduler.1.begin=2)
else
  CLS_EPOCHS=${DEMO_CLS_EPOCHS:-8}; COND_ITERS=${DEMO_COND_ITERS:-500}; SCALES=${DEMO_SCALES:-$DEFAULT_SCALES}
  NUM_SELECT=${DEMO_NUM_SELECT:-5}; NUM_PER_CLASS=${DEMO_NUM_PER_CLASS:-10}; NUM_FID_REF=${DEMO_NUM_FID_REF:-300}
  COND_SHORT=()
fi
COND_CKPT=$WORK/mage_cond/iter_${COND_ITERS}.pth
CLS_CKPT=$WORK/classifier/epoch_${CLS_EPOCHS}.pth
mkdir -p "$WORK/results" "$WORK/pictures" "$WORK/cond"

STEPS=" ${DEMO_COND_STEPS:-a b c d} "
step() { case "$STEPS" in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
case "$STEPS" in *" c "*) step d || { echo "DEMO_COND_STEPS: c and d run together, got '$STEPS'" >&2; exit 2; } ;; esac

# DEMO_COND_REUSE=1: keep the judge and the fine-tuned model of an earlier run (steps c-d only)
if [ "${DEMO_COND_REUSE:-0}" = "1" ] && [ -f "$CLS_CKPT" ] && [ -f "$COND_CKPT" ]; then
  echo "-- a), b) reused: $CLS_CKPT, $COND_CKPT"
else
if step a; then
echo "-- a) LeNet-5 judge on the real training split ($CLS_EPOCHS epochs)"
"$PYTHON" tools/train.py "$CLS_CFG" --work-dir "$WORK/classifier" --cfg-options \
  train_dataloader.dataset.data_root="$DATA" val_dataloader.dataset.data_root="$DATA" \
  test_dataloader.dataset.data_root="$DATA" train_cfg.max_epochs="$CLS_EPOCHS" train_cfg.val_interval="$CLS_EPOCHS" \
  param_scheduler.0.end="$CLS_EPOCHS" default_hooks.checkpoint.interval="$CLS_EPOCHS"
fi

if step b; then
echo "-- b) class-conditional fine-tuning from $MAGE_CKPT ($COND_ITERS iterations, encoder frozen)"
"$PYTHON" tools/train.py "$COND_CFG" --work-dir "$WORK/mage_cond" --cfg-options \
  model.init_checkpoint="$MAGE_CKPT" "${COND_DATA[@]}" train_cfg.max_iters="$COND_ITERS" \
  param_scheduler.1.end="$COND_ITERS" default_hooks.checkpoint.interval="$COND_ITERS" \
  ${COND_SHORT[@]+"${COND_SHORT[@]}"}
fi
fi
step c || exit 0

echo "-- c) guidance scale chosen on selection samples (seeds 1000000+) judged by the training-split classifier"
select_dirs=()
for s in $SCALES; do
  "$PYTHON" tools/generate.py "$COND_GEN_CFG" "$COND_CKPT" --classes all --num-per-class "$NUM_SELECT" \
    --guidance "$s" --seed 1000000 --out-dir "$WORK/cond/select_s$s" --batch-size 50 --grid 0 --overwrite --no-progress
  select_dirs+=("$WORK/cond/select_s$s")
done
"$PYTHON" tools/analysis_tools/class_accuracy.py "$CLS_CFG" "$CLS_CKPT" "${select_dirs[@]}" \
  --out "$WORK/cond/select.json"
BEST=$("$PYTHON" - "$WORK/cond/select.json" <<'EOF'
import json, re, sys
res = json.load(open(sys.argv[1]))['results']
acc = {float(re.search(r'select_s([0-9.]+)$', k).group(1)): v['accuracy'] for k, v in res.items()}
print(f'{max(sorted(acc), key=lambda s: acc[s]):g}')  # ties: the smaller scale
EOF
)
echo "   chosen guidance scale: $BEST"

echo "-- d) 10 x $NUM_PER_CLASS fresh samples at s = 1 and s = $BEST: class accuracy, FID vs test"
FINAL_SCALES=(1); [ "$BEST" != "1" ] && FINAL_SCALES+=("$BEST")
for s in "${FINAL_SCALES[@]}"; do
  "$PYTHON" tools/generate.py "$COND_GEN_CFG" "$COND_CKPT" --classes all --num-per-class "$NUM_PER_CLASS" \
    --guidance "$s" --seed 0 --out-dir "$WORK/cond/samples_s$s" --batch-size 50 --grid 10 --overwrite --no-progress
done
cp "$WORK/cond/samples_s$BEST/grid.png" "$WORK/pictures/conditional_guided.png"
cp "$WORK/cond/samples_s1/grid.png" "$WORK/pictures/conditional_unguided.png"
STATS=$WORK/fid/test_stats.npz  # stage 6's statistics of the held-out test images, else made here
if [ ! -f "$STATS" ]; then
  "$PYTHON" tools/analysis_tools/fid_reference_stats.py "$DATA/test" --out "$STATS"  # all (class-balanced) test images
fi
final_dirs=(); for s in "${FINAL_SCALES[@]}"; do final_dirs+=("$WORK/cond/samples_s$s"); done
"$PYTHON" tools/analysis_tools/class_accuracy.py "$CLS_CFG" "$CLS_CKPT" "${final_dirs[@]}" "$DATA/test" \
  --fid-reference "$STATS" --out "$WORK/cond/final.json"
"$PYTHON" - "$WORK" "$BEST" "$DATA/test" <<'EOF'
import json, os.path as osp, sys
work, best, test = sys.argv[1], float(sys.argv[2]), sys.argv[3]
final = json.load(open(osp.join(work, 'cond', 'final.json')))['results']
select = json.load(open(osp.join(work, 'cond', 'select.json')))['results']
key = lambda s: osp.join(work, 'cond', f'samples_s{s:g}')  # noqa: E731
unguided, guided, real = final[key(1.0)], final[key(best)], final[test]
n = unguided['num_images']
out = {'class-conditional MAGE (Fashion-MNIST, LeNet-5 judge trained on the real training split)': {
    'judge top-1 on real test images (%)': round(real['accuracy'], 2),
    f'class accuracy of {n} samples, no guidance s = 1 (%)': round(unguided['accuracy'], 2),
    f'class accuracy of {n} samples, guidance s = {best:g} (%)': round(guided['accuracy'], 2),
    f'FID vs test, s = 1 ({n} samples)': round(unguided['fid']['fid'], 2),
    f'FID vs test, s = {best:g} ({n} samples)': round(guided['fid']['fid'], 2),
    'selection (other seeds): class accuracy per scale (%)': {
        osp.basename(k).replace('select_s', 's = '): round(v['accuracy'], 2) for k, v in select.items()},
}}
json.dump(out, open(osp.join(work, 'results', 'conditional.json'), 'w'), indent=1)
print(json.dumps(out, indent=1))
EOF
