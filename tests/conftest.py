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

from tests.support import CORPUS_DE, course, cross_site_server, default_language  # noqa: F401  (the shared fixtures of tests/support.py)

pytest_plugins = ["tests.netguard"]  # every network connection outside loopback and the configured hosts fails the run
ROOT = Path(__file__).resolve().parent.parent


def _test_database_url():
    from django.db import connection

    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgresql://{auth}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


@pytest.fixture(scope="session", autouse=True)
def _end_stray_pooled_connections(django_db_setup):
    """Before the test database is dropped: end connections that Django's AsyncClient left checked out of the
    pool (its handler keeps connections open on purpose, and its sync views run on threads that end without
    giving them back; a pooled connection is not closed when its thread goes). Child processes are gone by
    then, so these are the only other sessions."""
    yield
    import psycopg

    with psycopg.connect(_test_database_url(), autocommit=True) as direct:
        direct.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid()")


@pytest.fixture(scope="session")
def worker_env(django_db_setup, django_db_blocker):
    """Environment for child processes that must use the test database (workers, servers)."""
    return dict(os.environ, DATABASE_URL=_test_database_url(), PYTHONUNBUFFERED="1")


_SESSION_WORKERS = []  # full names of the running session worker(s), drained before each test's teardown
QUEUES = ("default", "chat", "ingest", "generate", "lti")


def _drain_workers(names, timeout=120):
    """Drop queued tasks and wait until the workers run none: a task still writing while the test's
    database is flushed (TRUNCATE) deadlocks with it."""
    from config.celery import app

    with app.connection_for_write() as connection:
        for queue in QUEUES:
            connection.default_channel.queue_purge(queue)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        inspect = app.control.inspect(destination=names, timeout=2.0, limit=len(names))
        # tasks waiting for a countdown (retries) would run in a later test against reused ids: revoke them
        scheduled = [entry["request"]["id"] for entries in (inspect.scheduled() or {}).values() for entry in entries]
        if scheduled:
            app.control.revoke(scheduled, destination=names)
        replies = inspect.active() or {}
        reserved = inspect.reserved() or {}
        if len(replies) == len(names) and not any(replies.values()) and not any(reserved.values()):
            return
        time.sleep(0.05)
    raise RuntimeError(f"Celery worker(s) {names} still busy after {timeout} s")


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_teardown(item, nextitem):
    """Before a test's fixtures (and its database) are torn down, let the session worker go idle."""
    if _SESSION_WORKERS:
        _drain_workers(list(_SESSION_WORKERS))
    yield


@pytest.fixture
def own_ingest_queue():
    """The ingest queue for a test's own worker: a session worker that is running (started by an earlier test)
    stops taking ingestion tasks until the test ends."""
    from config.celery import app

    names = list(_SESSION_WORKERS)
    if names:
        app.control.cancel_consumer("ingest", destination=names, reply=True, timeout=10)
    yield
    if names:
        app.control.add_consumer("ingest", destination=names, reply=True, timeout=10)


@pytest.fixture(scope="session")
def celery_worker(worker_env, tmp_path_factory):
    """A real Celery worker process consuming every queue, against the test database."""
    from config.celery import app

    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    name = f"test-{uuid.uuid4().hex[:8]}@%h"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "default,chat,ingest,generate,lti",
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
    _SESSION_WORKERS.append(name.replace("%h", os.uname().nodename))
    yield process
    _SESSION_WORKERS.clear()
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


# --- Tutor: a stub inference server and the real ASGI web server --------------------------------------

@pytest.fixture(scope="session")
def stub_llm_server():
    """One OpenAI-compatible stub inference server on loopback for the session (see tests/stub_llm.py)."""
    from tests.stub_llm import StubLLM

    with StubLLM() as stub:
        yield stub


@pytest.fixture
def stub_llm(stub_llm_server):
    """The session's stub inference server, reset to a healthy default reply for this test."""
    stub_llm_server.reset()
    yield stub_llm_server
    stub_llm_server.reset()


@pytest.fixture(scope="session")
def web_server(worker_env, tmp_path_factory):
    """The real ASGI app under uvicorn on a free loopback port, against the test database; yields its base URL."""
    from tests.support import web_server_process

    with web_server_process(worker_env, tmp_path_factory.mktemp("web") / "web.log") as (url, _port, _process):
        yield url


# --- LTI: an independent platform (lti1p3platform) on a loopback HTTP server ----------------------------

@pytest.fixture
def lti_platform(live_server):
    """A FakeLMS (tests/lti_support.py) for the tool under live_server, already registered in the tool."""
    from tests.lti_support import FakeLMS

    platform = FakeLMS(live_server.url)
    platform.register_in_tool()
    yield platform
    platform.close()


@pytest.fixture
def two_courses(db, settings, tmp_path):
    """Two indexed courses (retrieval and rerank tests): A holds chapter 1 of the Debian-Referenz, B chapter 3
    (static embeddings: fast)."""
    from courses.documents import add_document
    from courses.ingest import ingest_document
    from courses.models import Course

    settings.MEDIA_ROOT = tmp_path / "media"
    settings.EMBEDDING_MODEL = "static"
    courses = []
    for title, name in [("A", "ch01.de.html"), ("B", "ch03.de.html")]:
        made = Course.objects.create(title=title)
        document = add_document(made, name, (CORPUS_DE / name).read_bytes(), enqueue=False)
        assert ingest_document(document.pk) == "ready"
        courses.append(made)
    return courses
