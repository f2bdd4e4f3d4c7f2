"""The foundation runs on real services: a worker process writes to PostgreSQL, pgvector answers."""

import uuid

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.worker
def test_task_runs_on_a_worker_process_and_writes_to_postgres(celery_worker):
    """ping_database runs in the worker (another PID) and its row is visible here."""
    import os

    from config.celery import ping_database
    from config.models import WorkerHeartbeat

    marker = uuid.uuid4().hex
    pk = ping_database.delay(marker).get(timeout=30)
    beat = WorkerHeartbeat.objects.get(pk=pk)
    assert beat.marker == marker
    assert beat.pid != os.getpid()


def test_vector_query_runs_on_pgvector():
    """The database is PostgreSQL with the vector extension, and a distance query orders rows."""
    assert connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        assert cursor.fetchone() is not None
        cursor.execute(
            "SELECT id FROM (VALUES (1, '[1,0,0]'::vector), (2, '[0,1,0]'::vector), (3, '[0.9,0.1,0]'::vector))"
            " AS t(id, v) ORDER BY v <=> '[1,0,0]'::vector"
        )
        assert [row[0] for row in cursor.fetchall()] == [1, 3, 2]


def test_liveness(client):
    assert client.get("/health/live").json() == {"status": "ok"}


def test_readiness_names_what_is_down(client, settings):
    """With the inference server pointing nowhere, readiness is 503 and says why."""
    settings.INFERENCE_URLS = ["http://127.0.0.1:9/v1"]
    response = client.get("/health/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["components"]["database"]["ok"] is True
    assert body["components"]["redis"]["ok"] is True
    assert body["components"]["inference"]["ok"] is False
    assert "127.0.0.1:9" in body["components"]["inference"]["detail"]


def test_a_busy_model_server_is_not_a_dead_one(client, settings):
    """A server that takes the connection but does not answer within the check's time (its one slot busy with
    answers) keeps readiness green; without any server configured, readiness says so and stays green too."""
    import socket
    import threading

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections (the kernel does), never answers
    accepted = []
    threading.Thread(target=lambda: accepted.append(silent.accept()), daemon=True).start()
    try:
        settings.INFERENCE_URLS = [f"http://127.0.0.1:{silent.getsockname()[1]}/v1"]
        response = client.get("/health/ready")
        assert response.status_code == 200, response.json()
        assert "busy" in response.json()["components"]["inference"]["detail"]
    finally:
        silent.close()
    settings.INFERENCE_URLS = []
    response = client.get("/health/ready")
    assert response.status_code == 200
    assert "no inference server configured" in response.json()["components"]["inference"]["detail"]


@pytest.mark.django_db
def test_front_page_tells_the_lms_admin_what_to_paste(client, settings):
    settings.PUBLIC_URL = "https://tutor.example.edu"
    page = client.get("/").content.decode()
    for path in ("/lti/login", "/lti/launch", "/lti/jwks"):
        assert f"https://tutor.example.edu{path}" in page
    assert "registration_link" in page  # dynamic registration starts from a one-time link the admin makes


def test_every_cache_object_of_a_process_shares_one_redis_pool():
    """Django makes a cache object per async context (per ASGI request); they must not each open Redis anew."""
    from django.core.cache import caches

    first, second = caches.create_connection("default"), caches.create_connection("default")
    assert first is not second
    assert first._cache._get_connection_pool(True) is second._cache._get_connection_pool(True)
    first.set("pool-check", 1)
    assert second.get("pool-check") == 1


@pytest.mark.django_db(transaction=True)
def test_database_work_from_async_code_borrows_pooled_connections_and_gives_them_back():
    """Celery and the async views close a connection after each task or call; with DATABASE_POOL that hands it
    back to the process's pool instead of ending it, so 30 calls open at most a few connections."""
    import asyncio

    from django.db import connection

    from config.threads import db_in_thread
    from courses.models import Course

    assert connection.settings_dict["OPTIONS"]["pool"]["max_size"] >= 1
    pool = connection.pool
    before = pool.get_stats()
    opened_before = before.get("connections_num", 0)
    # Other tests of this process (live servers, ASGI clients) may still hold a connection of the pool; this
    # test counts only its own.
    held_before = before.get("pool_size", 0) - before.get("pool_available", 0)

    async def many():
        return [await db_in_thread(Course.objects.count) for _ in range(30)]

    assert asyncio.run(many()) == [0] * 30
    connection.close()  # this test's own connection goes back too
    stats = pool.get_stats()
    assert stats.get("connections_num", 0) - opened_before <= 3
    held_after = stats["pool_size"] - stats["pool_available"]
    assert held_after <= held_before, "a connection was kept by an idle thread"


@pytest.mark.django_db(transaction=True)
def test_under_asgi_a_changed_session_is_still_saved(django_user_model):
    """config.middleware runs Django's middleware hooks on the event loop; saving a changed session (database)
    still goes to a thread: an admin login under ASGI keeps its session for the next request."""
    import asyncio

    from django.test import AsyncClient

    django_user_model.objects.create_superuser("admin", "admin@example.edu", "pw-123456")

    async def login_then_open_admin():
        client = AsyncClient()
        login = await client.post("/admin/login/?next=/admin/", {"username": "admin", "password": "pw-123456",
                                                                  "next": "/admin/"})
        return login, await client.get("/admin/")

    login, admin = asyncio.run(login_then_open_admin())
    assert login.status_code == 302 and login["Location"] == "/admin/"
    assert admin.status_code == 200
    assert admin["X-Frame-Options"] == "DENY" and "nosniff" in admin["X-Content-Type-Options"]


@pytest.mark.django_db(transaction=True)
def test_django_s_middleware_runs_without_a_thread_per_hook():
    """Django's MiddlewareMixin hands each hook of an async request to a thread (~14 hand-overs for our seven
    middlewares, ~5 ms a request); config.middleware runs them inline: a GET under ASGI keeps only Django's own
    hand-overs for the signals, the sync view and CSRF's three hooks (Django's own CsrfViewMiddleware: with
    CSRF_USE_SESSIONS its hooks read and write the session, a database access that must not run on the event loop)."""
    import asyncio
    from unittest import mock

    from asgiref.sync import SyncToAsync
    from django.test import AsyncClient

    calls = []
    original = SyncToAsync.__call__

    def counted(self, *args, **kwargs):
        calls.append(getattr(self.func, "__qualname__", repr(self.func)))
        return original(self, *args, **kwargs)

    asyncio.run(AsyncClient().get("/health/live"))  # warm-up: first-request work is not counted
    with mock.patch.object(SyncToAsync, "__call__", counted):
        response = asyncio.run(AsyncClient().get("/health/live"))
    assert response.status_code == 200
    hooks = [name for name in calls if "process_" in name and not name.startswith("CsrfViewMiddleware.")]
    assert hooks == [], calls
    assert len(calls) <= 6, calls  # request_started signal, the (sync) view, response.close, CSRF's three hooks


@pytest.mark.django_db(transaction=True)
def test_an_api_request_with_a_token_keeps_only_django_s_own_hand_overs_under_asgi():
    """An API GET with a token under ASGI: CSRF's hooks run inline (no session to load: a token request has none),
    so only the request signal, the sync DRF view, its response's rendering and response.close go to the thread
    (and, once every few seconds, the CSP's read of the platforms' origins, config.csp).
    The same GET with the session in the header still works: the CSRF hooks read that session on the thread (on the
    event loop Django would refuse the database access, and the request would fail)."""
    import asyncio
    from unittest import mock

    from asgiref.sync import SyncToAsync
    from django.test import AsyncClient

    from courses.models import ApiToken, Course, Membership
    from tests.support import make_member, session_headers

    course = Course.objects.create(title="Kurs")
    lecturer, session = make_member(course, Membership.INSTRUCTOR)
    _token, secret = ApiToken.issue(lecturer, name="t", course=course)
    url = f"/api/v1/courses/{course.pk}/"
    calls = []
    original = SyncToAsync.__call__

    def counted(self, *args, **kwargs):
        calls.append(getattr(self.func, "__qualname__", repr(self.func)))
        return original(self, *args, **kwargs)

    asyncio.run(AsyncClient().get(url, headers={"Authorization": f"Bearer {secret}"}))  # warm-up
    with mock.patch.object(SyncToAsync, "__call__", counted):
        response = asyncio.run(AsyncClient().get(url, headers={"Authorization": f"Bearer {secret}"}))
    assert response.status_code == 200 and response.json()["id"] == course.pk
    assert not [name for name in calls if "Csrf" in name], calls
    django_s = [name for name in calls if not name.startswith("db_in_thread")]  # CSP's origins, read every few s
    assert len(django_s) == 4, calls  # request_started, the view, its rendering, response.close
    by_session = asyncio.run(AsyncClient().get(url, headers=session_headers(session)))
    assert by_session.status_code == 200 and by_session.json()["access"] == "write"


def test_under_asgi_a_request_has_a_thread_to_itself_and_the_next_one_reuses_it():
    """config.asgi's handler: a request's sync parts (here the request_started signal) run on a thread of that
    request while it runs, two requests at once on two threads (they meet at a barrier, which one thread could not
    pass), and later requests reuse idle threads instead of starting new ones."""
    import asyncio
    import threading

    from django.core.signals import request_started

    from config.asgi import ASGIHandler

    handler, seen, barrier, meet = ASGIHandler(), [], threading.Barrier(2, timeout=10), []

    def on_start(**kwargs):
        seen.append(threading.get_ident())
        if meet:
            barrier.wait()

    async def live():
        messages, asked = [], []

        async def receive():
            if not asked:
                asked.append(True)
                return {"type": "http.request", "body": b"", "more_body": False}
            await asyncio.sleep(3600)  # no disconnect: Django cancels this when the response is sent

        async def send(message):
            messages.append(message)

        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                 "scheme": "http", "path": "/health/live", "raw_path": b"/health/live", "query_string": b"",
                 "root_path": "", "headers": [(b"host", b"localhost")], "client": ("127.0.0.1", 5000),
                 "server": ("127.0.0.1", 80)}
        await handler(scope, receive, send)
        return messages[0]["status"]

    async def requests():
        one_by_one = [await live() for _ in range(3)]
        meet.append(True)
        return one_by_one, await asyncio.gather(live(), live())

    request_started.connect(on_start, dispatch_uid="thread-seen")
    try:
        one_by_one, at_once = asyncio.run(requests())
    finally:
        request_started.disconnect(dispatch_uid="thread-seen")
    assert one_by_one == [200, 200, 200] and at_once == [200, 200]
    assert len(set(seen[:3])) == 1  # one after another: one thread, reused
    assert len(set(seen[3:])) == 2 and len(set(seen[3:]) & set(seen[:3])) == 1  # at once: two, one the idle one
    assert len(handler.idle) == 2


@pytest.mark.django_db(transaction=True)
def test_under_asgi_csrf_still_refuses_a_post_without_its_token(django_user_model):
    """CSRF's view check runs inline on the event loop under ASGI: it still refuses a form post without the
    token and lets the one with it through."""
    import asyncio
    import re

    from django.test import AsyncClient

    django_user_model.objects.create_superuser("admin", "admin@example.edu", "pw-123456")
    form = {"username": "admin", "password": "pw-123456", "next": "/admin/"}

    async def posts():
        client = AsyncClient(enforce_csrf_checks=True)
        refused = await client.post("/admin/login/", form)
        page = await client.get("/admin/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)
        return refused, await client.post("/admin/login/", {**form, "csrfmiddlewaretoken": token})

    refused, accepted = asyncio.run(posts())
    assert refused.status_code == 403
    assert accepted.status_code == 302 and accepted["Location"] == "/admin/"


def test_the_stack_stops_app_processes_before_the_services_they_use(tmp_path):
    """deploy.stack.Stack.stop: workers and web first (each sent its signal itself, so a Celery worker can stop
    its own pool), Redis and PostgreSQL only once those have ended; a process that ignores its signal is
    killed after the grace period."""
    import signal
    import sys
    import time

    from deploy.stack import Stack

    events = tmp_path / "events"
    child = ("import signal, sys, time\n"
             "def stop(signum, frame):\n"
             "    time.sleep(0.5)\n"
             "    open(sys.argv[2], 'a').write(sys.argv[1] + ' ' + str(signum) + '\\n')\n"
             "    sys.exit(0)\n"
             "signal.signal(signal.SIGTERM, stop)\n"
             "signal.signal(signal.SIGINT, stop)\n"
             "open(sys.argv[2], 'a').write(sys.argv[1] + ' up\\n')\n"
             "while True: time.sleep(0.1)\n")
    stubborn = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True: time.sleep(0.1)\n"
    stack = Stack()
    stack.spawn("database", [sys.executable, "-c", child, "database", events], service=True,
                stop_signal=signal.SIGINT)
    stack.spawn("worker", [sys.executable, "-c", child, "worker", events])
    hung = stack.spawn("hung", [sys.executable, "-c", stubborn])
    deadline = time.monotonic() + 30
    while (not events.exists() or events.read_text().count(" up") < 2) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # the stubborn one has set its handler
    stack.stop(grace=2)
    ended = [line for line in events.read_text().splitlines() if not line.endswith(" up")]
    assert ended == [f"worker {int(signal.SIGTERM)}", f"database {int(signal.SIGINT)}"]
    assert hung.returncode == -signal.SIGKILL


@pytest.mark.slow
def test_the_run_command_starts_without_a_model_server(tmp_path):
    """`run.sh --no-llm` (deploy.stack run --no-llm): everything but the model starts, readiness is green and
    names the missing model, and Ctrl-C stops it. Its own database and Redis database, so its workers never
    take the test suite's tasks."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import time
    import urllib.request

    import psycopg
    from django.conf import settings

    from deploy.stack import ROOT, free_port

    s = connection.settings_dict
    name = f"nollm_{uuid.uuid4().hex[:8]}"
    server = f"postgresql://{s['USER']}@{s['HOST']}:{s['PORT']}"
    with psycopg.connect(server + "/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    port = free_port()
    env = dict(os.environ, DATABASE_URL=f"{server}/{name}", REDIS_URL=settings.REDIS_URL.rsplit("/", 1)[0] + "/7",
               TUTOR_DATA_DIR=str(tmp_path / "data"), DJANGO_ENV="test", INFERENCE_URL="http://127.0.0.1:8089/v1")
    log = open(tmp_path / "run.log", "w")
    process = subprocess.Popen([sys.executable, "-m", "deploy.stack", "run", "--no-llm", "--port", str(port)],
                               cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    body = None
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=5) as response:
                    body = json.load(response)
                    break
            except OSError:
                time.sleep(0.5)
        assert body is not None, (tmp_path / "run.log").read_text()[-3000:]
        assert body["status"] == "ok", body
        assert "no inference server configured" in body["components"]["inference"]["detail"]
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
        log.close()
        with psycopg.connect(server + "/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    assert process.returncode == 0
    assert "no inference server (--no-llm)" in (tmp_path / "run.log").read_text()
