#!/usr/bin/env bash
# The whole product on one machine: installs what is missing, then starts PostgreSQL+pgvector,
# Redis, the llama.cpp server, one Celery worker per queue and the web app. Ctrl-C stops it all.
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh" inference
exec "$VENV/bin/python" -m deploy.stack run "$@"
