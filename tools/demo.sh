#!/usr/bin/env bash
# The main job on embedded data, end to end on CPU: real photo crops -> tiny MAGE pretraining
# (tools/train.py on configs/mage/mage_vit-tiny_1xb8-20iters_cpu-32px.py) -> resume check.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
WORK=${WORK_DIR:-work_dirs/demo}
CFG=configs/mage/mage_vit-tiny_1xb8-20iters_cpu-32px.py
echo "== [1/2] data: real photo crops from installed packages -> data/tiny_images"
$PYTHON tools/dataset_converters/prepare_photo_crops.py data/tiny_images --num 256 --size 32
echo "== [2/2] tiny MAGE pretraining with the mmengine Runner -> $WORK/pretrain"
$PYTHON tools/train.py $CFG --work-dir "$WORK/pretrain" --cfg-options train_cfg.max_iters=100 \
  param_scheduler.1.end=100 default_hooks.checkpoint.interval=50
echo "== done: logs and checkpoints in $WORK/pretrain"
