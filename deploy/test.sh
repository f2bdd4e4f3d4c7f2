#!/usr/bin/env bash
# The test suite: installs what is missing, starts throwaway PostgreSQL+pgvector and Redis,
# and runs pytest (which starts a real Celery worker, loopback stub servers and llama.cpp).
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh" inference,dev
exec "$VENV/bin/python" -m deploy.stack test "$@"
