"""The image's roles (deploy/role.py): the command each role runs, the health check against a real uvicorn and a
real Celery worker, and the wait for migrations against a migrated and an empty database."""

import os
import subprocess
import sys
import uuid
from urllib.parse import urlparse

import pytest

from deploy import role
from deploy.stack import free_port
from tests.ops_support import fresh_database


def test_each_role_runs_its_command():
    env = {"WEB_PORT": "8080", "CHAT_WORKER_CONCURRENCY": "16"}
    web = role.command_for("web", [], env)
    assert web[1:4] == ["-m", "uvicorn", "config.asgi:application"] and web[web.index("--port") + 1] == "8080"
    chat = role.command_for("worker", ["chat"], env)
    assert chat[chat.index("-Q") + 1] == "chat" and chat[chat.index("-n") + 1] == "chat@%h"
    assert chat[chat.index("--pool") + 1] == "threads" and chat[chat.index("--concurrency") + 1] == "16"
    ingest = role.command_for("worker", ["ingest"], env)
    assert ingest[ingest.index("--pool") + 1] == "prefork" and ingest[ingest.index("--concurrency") + 1] == "1"
    assert role.command_for("migrate", [], env)[-2:] == ["migrate", "--noinput"]
    assert role.command_for("manage", ["purge_conversations"], env)[-1] == "purge_conversations"
    assert role.command_for("healthcheck", [], env) is None
    assert role.command_for("readiness", [], env) is None


@pytest.mark.parametrize("argv, message", [
    (["worker", "email"], "unknown queue 'email'"),
    (["worker"], "unknown role 'worker'"),
    (["serve"], "unknown role 'serve'"),
    (["manage"], "unknown role 'manage'"),
])
def test_a_wrong_role_is_refused_with_what_exists(argv, message):
    with pytest.raises(role.RoleError, match=message):
        role.command_for(argv[0], argv[1:], {})


def test_a_bad_concurrency_names_its_variable():
    with pytest.raises(role.RoleError, match="CHAT_WORKER_CONCURRENCY='many'"):
        role.command_for("worker", ["chat"], {"CHAT_WORKER_CONCURRENCY": "many"})
    result = subprocess.run([sys.executable, "-m", "deploy.role", "worker", "chat"], capture_output=True, text=True,
                            env=dict(os.environ, CHAT_WORKER_CONCURRENCY="0"))
    assert result.returncode == 2 and "must be a positive whole number" in result.stderr


def test_the_health_check_asks_the_web_app(transactional_db, web_server):
    port = urlparse(web_server).port
    argv = role.web_command({"WEB_PORT": str(port)})
    assert role.healthcheck({}, argv) == 0
    assert role.healthcheck({}, role.web_command({"WEB_PORT": str(free_port())})) == 1


def test_the_readiness_role_prints_what_the_web_app_allows_from_inside(transactional_db, web_server, capsys):
    """Readiness is refused through the proxy, so admins ask it from inside the container (loopback)."""
    import json

    port = urlparse(web_server).port
    code = role.readiness({"WEB_PORT": str(port)})
    body = json.loads(capsys.readouterr().out)
    assert set(body["components"]) >= {"database", "redis", "workers", "inference", "periodic"}
    assert code == (0 if body["status"] == "ok" else 1)
    assert role.readiness({"WEB_PORT": str(free_port())}) == 1


@pytest.mark.worker
def test_the_health_check_pings_the_worker_by_its_node_name(transactional_db, celery_worker):
    from tests.conftest import _SESSION_WORKERS

    node = _SESSION_WORKERS[0]
    argv = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "chat", "-n", node]
    assert role.healthcheck({}, argv) == 0
    argv[-1] = f"gone-{uuid.uuid4().hex[:6]}@%h"
    assert role.healthcheck({}, argv) == 1


def test_the_main_process_command_is_read_from_proc():
    argv = role.main_process_command(proc=f"/proc/{os.getpid()}/cmdline")
    assert argv[0] == sys.executable or argv[0].endswith("python") or "python" in argv[0]


@pytest.fixture
def empty_database():
    with fresh_database("tutor_empty") as url:
        yield url


def test_waiting_for_migrations_ends_when_the_schema_is_current(transactional_db, worker_env, empty_database):
    assert role.wait_for_migrations(dict(worker_env, MIGRATIONS_WAIT_SECONDS="60")) == 0
    result = subprocess.run([sys.executable, "-m", "deploy.role", "wait-for-migrations"], capture_output=True,
                            text=True, env=dict(worker_env, DATABASE_URL=empty_database, MIGRATIONS_WAIT_SECONDS="1"),
                            timeout=120)
    assert result.returncode == 1
    assert "migrations still not applied" in result.stderr
