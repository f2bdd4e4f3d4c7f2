# Sourced by run.sh and test.sh: make .venv with everything the product needs, once.
# Re-running is cheap: pip is only called when pyproject.toml changed since the last install.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
VENV="$ROOT/.venv"
if [ ! -x "$VENV/bin/python" ]; then
  echo "[bootstrap] creating $VENV" >&2
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip wheel
fi
stamp="$VENV/.installed-$(sha256sum pyproject.toml | cut -c1-16)-$1"
if [ ! -f "$stamp" ]; then
  echo "[bootstrap] installing dependencies into $VENV (the first time builds llama.cpp: about 10-15 minutes on 2 cores; pip caches the wheel)" >&2
  # torch first, pinned to the CPU build: any other torch request pulls a multi-GB CUDA build.
  "$VENV/bin/python" -m pip install -q "torch==2.13.0" || "$VENV/bin/python" -m pip install -q torch --index-url https://download.pytorch.org/whl/cpu
  "$VENV/bin/python" -m pip install -q -e ".[$1]"
  rm -f "$VENV"/.installed-*
  touch "$stamp"
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
