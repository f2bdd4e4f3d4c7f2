"""The container image, built from deploy/Dockerfile with podman and run against the test PostgreSQL and Redis.

One module-scoped build (minutes the first time on a machine, seconds once podman has its layers): the image runs
as a non-root user, carries no compiler, loads its packaged embedding models offline (a build step), migrates a
fresh database in its ``migrate`` role, serves ``/health/*`` in its ``web`` role, and answers its own health check
in the web and worker roles.
"""

import json
import os
import shutil
import time
import urllib.error
import urllib.request
import uuid

import pytest

from deploy.stack import free_port
from tests import container_support as containers
from tests.ops_support import fresh_database

pytestmark = [pytest.mark.slow, pytest.mark.image]


@pytest.fixture(scope="module")
def image():
    """The product image, built from the working tree."""
    if shutil.which("podman") is None:
        pytest.fail("podman is not installed: deploy/test.sh installs it from Debian when run as root")
    containers.build_image()
    # the build's check-models step prints only when it runs, not when podman takes its layer from the cache (the
    # image's files unchanged since an earlier build): so the built image runs it here
    checked = containers.run_container(containers.IMAGE_TAG, "check-models", timeout=600, env={
        "SECRET_KEY": "test-only", "ALLOWED_HOSTS": "localhost", "PUBLIC_URL": "https://localhost",
        "TUTOR_DATA_DIR": "/tmp/check"})
    output = checked.stdout + checked.stderr
    assert checked.returncode == 0, output
    assert "static: 64 dimensions, loaded offline" in output
    assert "e5-small: 384 dimensions, loaded offline" in output
    return containers.IMAGE_TAG


@pytest.fixture(scope="module")
def image_database():
    """A fresh, empty database in the test PostgreSQL server, for the image's own migrate role."""
    with fresh_database("tutor_image") as url:
        yield url


def production_env(database_url, **extra):
    """What an admin's tutor.env and secrets.env give the container (no inference server here)."""
    return {"SECRET_KEY": uuid.uuid4().hex * 2, "DATABASE_URL": database_url, "REDIS_URL": os.environ["REDIS_URL"],
            "ALLOWED_HOSTS": "127.0.0.1,localhost", "PUBLIC_URL": "https://tutor.example.edu",
            "INFERENCE_URL": "http://127.0.0.1:9/v1", **extra}


def wait_for_url(url, container, timeout=120):
    """The response of the first successful GET of url (any HTTP status), or fail with the container's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except OSError:
            time.sleep(1)
    pytest.fail(f"{url} did not answer within {timeout} s:\n{containers.remove_container(container)}")


def test_the_image_runs_as_a_non_root_user_without_a_compiler(image):
    result = containers.run_container(image, "-c", "id -u; for tool in gcc cc c++ cmake make; do "
                                      "command -v $tool && echo FOUND $tool; done; ls /srv/static/admin/css/base.css",
                                      entrypoint="sh")
    assert result.returncode == 0, result.stdout + result.stderr  # the static files were collected at build time
    lines = result.stdout.split()
    assert lines[0] == "10001"
    assert "FOUND" not in result.stdout


def test_an_unknown_role_is_refused_with_the_list_of_roles(image):
    result = containers.run_container(image, "wrker", "chat")
    assert result.returncode == 2
    assert "unknown role 'wrker chat'" in result.stderr and "worker {chat|ingest|generate|lti}" in result.stderr


def test_migrate_then_web_and_worker_roles_answer_their_health_checks(image, image_database):
    env = production_env(image_database)
    migrated = containers.run_container(image, "migrate", env=env, timeout=600)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    assert "Applying courses.0001_initial" in migrated.stdout

    port = free_port()
    web, worker = f"tutor-web-{uuid.uuid4().hex[:6]}", f"tutor-worker-{uuid.uuid4().hex[:6]}"
    try:
        started = containers.run_container(image, "web", env={**env, "WEB_PORT": str(port)}, name=web, detach=True)
        assert started.returncode == 0, started.stderr
        status, body = wait_for_url(f"http://127.0.0.1:{port}/health/live", web)
        assert status == 200 and json.loads(body) == {"status": "ok"}
        status, body = wait_for_url(f"http://127.0.0.1:{port}/health/ready", web)
        components = json.loads(body)["components"]
        assert components["database"]["ok"] and "pgvector" in components["database"]["detail"]
        assert components["redis"]["ok"]
        assert status == 503 and not components["inference"]["ok"]  # nothing listens on the inference URL here

        started = containers.run_container(image, "worker", "generate", env=env, name=worker, detach=True)
        assert started.returncode == 0, started.stderr
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # the worker's health check: a Celery ping to its own node name
            checked = containers.run(["podman", "exec", worker, "python", "-m", "deploy.role", "healthcheck"],
                                     check=False)
            if checked.returncode == 0:
                break
            time.sleep(2)
        assert checked.returncode == 0, checked.stderr + containers.remove_container(worker)
        checked = containers.run(["podman", "exec", web, "python", "-m", "deploy.role", "healthcheck"], check=False)
        assert checked.returncode == 0, checked.stderr
        owner = containers.run(["podman", "exec", web, "sh", "-c", "id -u; touch /data/probe && echo writable"])
        assert owner.stdout.split() == ["10001", "writable"]
    finally:
        containers.remove_container(web)
        containers.remove_container(worker)
