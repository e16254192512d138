#!/usr/bin/env bash
# Sets up everything Shirabe needs, idempotently:
#   - Debian packages used by the recipes (only when run as root and missing):
#     sox, libsox-fmt-mp3, fluidsynth, fluid-soundfont-gm;
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
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python3}
VENV=${VENV:-$root/.venv}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}

log() { echo "[install] $*"; }

# ---- Debian packages -------------------------------------------------------
apt_packages="sox libsox-fmt-mp3 fluidsynth fluid-soundfont-gm"
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
    log "         the song and accompaniment parts of the mini corpus need fluidsynth and its soundfont."
  fi
fi

# ---- virtual environment ---------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
py="$VENV/bin/python"

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
"$py" -m pip install -q --no-deps --no-build-isolation -e "$root"
"$py" -c "import torch, lhotse, pyopenjtalk, pyworld, soundfile; print('[install] torch', torch.__version__, '| lhotse', lhotse.__version__)"
echo "$want" > "$stamp"
log "done"
