#!/usr/bin/env bash
# The test suite: installs what is missing, runs the pages' JavaScript tests (node --test), starts throwaway
# PostgreSQL+pgvector and Redis, and runs pytest (which starts a real Celery worker, loopback stub servers,
# llama.cpp, and Chromium for the browser tests with their accessibility audit, axe-core from npm).
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh" inference,dev
# The deployment checks (tests/test_deploy_*.py) use Debian's container tools: podman with runc builds and runs
# the image, debootstrap makes its local Python base, docker-compose validates compose.yaml. Installed when
# missing and we are root; kubectl (for kustomize) is part of the machine image.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  missing=()
  for tool in podman:podman runc:runc debootstrap:debootstrap docker-compose:docker-compose unshare:util-linux \
              ip:iproute2; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool#*:}")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "[test] installing Debian packages for the deployment checks: ${missing[*]}" >&2
    (DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$PIPLOG" 2>&1 \
      || { apt-get update -q >>"$PIPLOG" 2>&1 \
           && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$PIPLOG" 2>&1; }) \
      || echo "[test] could not install ${missing[*]}; the tests that need them will say so" >&2
  fi
fi
# node and npm from Debian when missing and we are root (the JavaScript tests and axe-core need them)
if ! command -v npm >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "[test] installing nodejs and npm from Debian" >&2
  apt-get update -qq >/dev/null && apt-get install -y -qq nodejs npm >/dev/null
fi
# the German synonym list (OpenThesaurus, LGPL-2.1) the search uses (settings.SYNONYMS_FILE), from Debian
if [ ! -f /usr/share/openthesaurus-de/openthesaurus.txt ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "[test] installing openthesaurus-de-text from Debian" >&2
  apt-get install -y -qq openthesaurus-de-text >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null && apt-get install -y -qq openthesaurus-de-text >/dev/null; } \
    || echo "[test] could not install openthesaurus-de-text: searching without synonyms" >&2
fi
# the npm packages of package-lock.json (exact versions), once
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "[test] npm ci (package-lock.json)" >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
fi
# only when pytest runs everything (no test paths given): the linters (ruff for Python, ESLint for the pages'
# JavaScript; their rules are in pyproject.toml and eslint.config.js) and the JavaScript tests, failing the run
# when any of them fails
if ! printf '%s\n' "$@" | grep -q '^tests/'; then
  echo "[test] lint: ruff check ." >&2
  "$VENV/bin/ruff" check .
  echo "[test] lint: eslint ." >&2
  npx --no-install eslint .
  echo "[test] JavaScript: node --test tests/js/" >&2
  node --test --test-reporter=spec tests/js/
fi
exec "$VENV/bin/python" -m deploy.stack test "$@"
