#!/usr/bin/env bash
# Installs k2 (fused Swoosh and other kernels) into ./.venv, but only when a k2
# wheel built for the installed torch version and CUDA/CPU flavour exists.
# Shirabe runs without k2; this script never fails the set-up: when there is
# no matching wheel it says why and exits 0.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${VENV:-$root/.venv}
py="$VENV/bin/python"
[ -x "$py" ] || py=python3

info=$("$py" - <<'PY' 2>/dev/null
import torch
cuda = torch.version.cuda or "cpu"
print(torch.__version__.split("+")[0], cuda)
PY
) || { echo "[install_k2] torch is not importable with $py; run tools/install.sh first"; exit 0; }
read -r torch_ver cuda_ver <<<"$info"

if "$py" -c "import k2" >/dev/null 2>&1; then
  echo "[install_k2] k2 already imports; nothing to do"
  exit 0
fi

# k2 publishes versions like 1.24.4.dev20250307+cuda12.1.torch2.6.0 (CUDA) or
# ...+cpu.torch2.6.0 (CPU). Ask pip which versions exist and keep a matching one.
if [ "$cuda_ver" = cpu ]; then flavour="cpu.torch${torch_ver}"; else flavour="cuda${cuda_ver}.torch${torch_ver}"; fi
echo "[install_k2] looking for a k2 wheel built for ${flavour}"
versions=$("$py" -m pip index versions k2 2>/dev/null | sed -n 's/^Available versions: //p' | tr ',' '\n' | tr -d ' ')
match=$(printf '%s\n' $versions | grep -F "+${flavour}" | head -n 1 || true)
if [ -z "$match" ]; then
  echo "[install_k2] no k2 wheel matches torch ${torch_ver} (${cuda_ver}) on the configured indexes."
  echo "[install_k2] Shirabe will use its pure-PyTorch kernels. To use k2, build it from source"
  echo "[install_k2] against this torch (https://k2-fsa.github.io/k2/installation/) and re-run."
  exit 0
fi
echo "[install_k2] installing k2==${match}"
if "$py" -m pip install "k2==${match}" && "$py" -c "import k2"; then
  echo "[install_k2] k2 installed"
else
  echo "[install_k2] k2 ${match} did not install or import; uninstalling, Shirabe keeps its PyTorch path"
  "$py" -m pip uninstall -y k2 >/dev/null 2>&1
fi
exit 0
