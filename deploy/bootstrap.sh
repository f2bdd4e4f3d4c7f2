# Sourced by run.sh and test.sh: make .venv with everything the product needs, once.
# Re-running is cheap: pip is only called when pyproject.toml or the lock file changed since the last install.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
VENV="$ROOT/.venv"
EXTRAS="$1"
mkdir -p "$ROOT/var"
PIPLOG="$ROOT/var/pip-install.log"

pip_install() {
  if ! "$VENV/bin/python" -m pip install "$@" >>"$PIPLOG" 2>&1; then
    echo "[bootstrap] pip install $* failed; the end of $PIPLOG:" >&2
    grep -v "WARNING: Location" "$PIPLOG" | tail -25 >&2
    exit 1
  fi
}

if [ ! -x "$VENV/bin/python" ]; then
  echo "[bootstrap] creating $VENV" >&2
  "$PY" -m venv "$VENV"
  pip_install "$(grep -ho "^pip==[0-9.]*" requirements/*.lock | head -1)"  # the pip version the lock files were checked with
fi
# Exact versions with their hashes (requirements/*.lock, made by deploy/lock.sh): the same on every machine.
case "$EXTRAS" in
  *dev*) LOCK=requirements/dev.lock ;;
  *inference*) LOCK=requirements/inference.lock ;;
  *) LOCK=requirements/base.lock ;;
esac
stamp="$VENV/.installed-$(cat pyproject.toml "$LOCK" | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "[bootstrap] installing the locked dependencies ($LOCK) into $VENV (log: $PIPLOG). The first time" \
       "compiles llama.cpp: about 10-15 minutes on 2 cores; pip caches the wheel for next time." >&2
  # torch first, pinned to the CPU build: any other torch request pulls a multi-GB CUDA build.
  pip_install "torch==2.13.0"
  pip_install --no-deps --require-hashes -r "$LOCK"
  pip_install --no-deps --no-build-isolation -e .
  if ! "$VENV/bin/python" -m pip check >>"$PIPLOG" 2>&1; then
    echo "[bootstrap] the installed packages do not fit together (pip check); the end of $PIPLOG:" >&2
    tail -10 "$PIPLOG" >&2
    exit 1
  fi
  touch "$stamp"
  echo "[bootstrap] dependencies installed" >&2
fi
# The browser test drives Debian's chromium (never a downloaded browser build); the i18n tests run
# gettext's makemessages/msgfmt. Installed from Debian when missing and we are root.
if [[ "$EXTRAS" == *dev* ]] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  missing=()
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v msgfmt >/dev/null 2>&1 || missing+=(gettext)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "[bootstrap] installing Debian packages for the tests: ${missing[*]}" >&2
    (apt-get install -y -q "${missing[@]}" >>"$PIPLOG" 2>&1 || { apt-get update -q >>"$PIPLOG" 2>&1 && apt-get install -y -q "${missing[@]}" >>"$PIPLOG" 2>&1; }) \
      || echo "[bootstrap] could not install ${missing[*]}; the tests that need them will say so" >&2
  fi
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
