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


@pytest.mark.django_db
def test_front_page_tells_the_lms_admin_what_to_paste(client, settings):
    settings.PUBLIC_URL = "https://tutor.example.edu"
    page = client.get("/").content.decode()
    for path in ("/lti/register/", "/lti/login", "/lti/launch", "/lti/jwks"):
        assert f"https://tutor.example.edu{path}" in page


def test_every_cache_object_of_a_process_shares_one_redis_pool():
    """Django makes a cache object per async context (per ASGI request); they must not each open Redis anew."""
    from django.core.cache import caches

    first, second = caches.create_connection("default"), caches.create_connection("default")
    assert first is not second
    assert first._cache._get_connection_pool(True) is second._cache._get_connection_pool(True)
    first.set("pool-check", 1)
    assert second.get("pool-check") == 1
