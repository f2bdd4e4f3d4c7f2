"""Shared fixtures: the real Celery worker, run against the test database.

The test command (``deploy/test.sh``) has already started a throwaway PostgreSQL+pgvector and
Redis and exported their URLs; pytest-django creates the test database in that server.
"""

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _test_database_url():
    from django.db import connection

    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgresql://{auth}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


@pytest.fixture(scope="session")
def worker_env(django_db_setup, django_db_blocker):
    """Environment for child processes that must use the test database (workers, servers)."""
    return dict(os.environ, DATABASE_URL=_test_database_url(), PYTHONUNBUFFERED="1")


@pytest.fixture(scope="session")
def celery_worker(worker_env, tmp_path_factory):
    """A real Celery worker process consuming every queue, against the test database."""
    from config.celery import app

    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    name = f"test-{uuid.uuid4().hex[:8]}@%h"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "default,chat,ingest,generate",
             "-n", name, "--concurrency", "2", "--loglevel", "INFO", "--without-gossip", "--without-mingle",
             "--pool", "prefork"],
            env=worker_env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Celery worker exited early:\n{log_path.read_text()}")
        if app.control.ping(timeout=0.5):
            break
    else:
        process.kill()
        raise RuntimeError(f"Celery worker did not answer within 60 s:\n{log_path.read_text()}")
    process.log_path = log_path
    yield process
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
