"""Liveness and readiness: each component's state with a clear reason when it is down."""

import time

import httpx
import redis
from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET


def check_database():
    """PostgreSQL answers and offers the pgvector extension.

    Checked over a connection of its own, not one from the pool (settings DATABASE_POOL): when the server is
    down, the pool only says it got no connection in time; a direct connection says why.
    """
    import psycopg

    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    with psycopg.connect(**params) as direct:
        server, installed, available = direct.execute(
            "SELECT current_setting('server_version'), "
            "(SELECT extversion FROM pg_extension WHERE extname = 'vector'), "
            "(SELECT default_version FROM pg_available_extensions WHERE name = 'vector')").fetchone()
    if installed:
        return f"PostgreSQL {server} with pgvector {installed}"
    if available:
        return f"PostgreSQL {server}; pgvector {available} available, created by the first migration"
    raise RuntimeError(f"PostgreSQL {server} has no pgvector extension: install pgvector on the database server")


def check_redis():
    """Redis answers PING."""
    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
        return f"Redis {client.info('server').get('redis_version', '?')}"
    finally:
        client.close()


def check_workers():
    """At least one Celery worker answers on each queue chat, ingest and generate."""
    from config.celery import app

    replies = app.control.inspect(timeout=1.5).active_queues() or {}
    served = {queue["name"] for queues in replies.values() for queue in queues}
    missing = [q for q in ("chat", "ingest", "generate") if q not in served]
    if not replies:
        raise RuntimeError("no Celery worker answered")
    if missing:
        raise RuntimeError(f"no worker consumes queue(s): {', '.join(missing)}")
    return f"{len(replies)} worker(s) on {', '.join(sorted(served))}"


def check_inference():
    """Each inference endpoint answers: its /health route (vLLM, llama.cpp servers, our embedded one), else its
    model list. A server that accepts the connection but is slow to answer is busy, not down: answers queue
    there, so readiness does not fail (and never waits for a model slot)."""
    from tutor.inference.client import _server_root

    if not settings.INFERENCE_URLS:
        return "no inference server configured (INFERENCE_URL=none): the chat says that no model is set up"
    headers = {"Authorization": f"Bearer {settings.INFERENCE_API_KEY}"} if settings.INFERENCE_API_KEY else {}
    errors, busy = [], []
    for base in settings.INFERENCE_URLS:
        fallback = base.rstrip("/") + ("/models" if settings.INFERENCE_API == "openai" else "/api/tags")
        try:
            for url in (_server_root(base) + "/health", fallback):
                response = httpx.get(url, timeout=3, headers=headers)
                if response.status_code in (404, 405) and url != fallback:
                    continue
                response.raise_for_status()
                return f"{base} answers"
        except httpx.TimeoutException as exc:
            if isinstance(exc, httpx.ConnectTimeout):
                errors.append(f"{base}: {exc.__class__.__name__}: {exc}")
            else:
                busy.append(base)
        except httpx.HTTPError as exc:
            errors.append(f"{base}: {exc.__class__.__name__}: {exc}")
    if busy:
        return f"{busy[0]} is busy (took the connection, slow to answer)"
    raise RuntimeError("; ".join(errors))


CHECKS = {
    "database": check_database,
    "redis": check_redis,
    "workers": check_workers,
    "inference": check_inference,
}


def run_checks(names=None):
    """Run the named checks (all by default); returns {name: {"ok", "detail", "ms"}}."""
    results = {}
    for name, check in CHECKS.items():
        if names and name not in names:
            continue
        started = time.perf_counter()
        try:
            results[name] = {"ok": True, "detail": check()}
        except Exception as exc:  # every failure becomes a reason in the report
            reason = " ".join(str(exc).split())  # one line, even for multi-line driver errors
            results[name] = {"ok": False, "detail": f"{exc.__class__.__name__}: {reason}"}
        results[name]["ms"] = round((time.perf_counter() - started) * 1000, 1)
    return results


@require_GET
def live(request):
    """Liveness: the web process answers."""
    return JsonResponse({"status": "ok"})


@require_GET
def ready(request):
    """Readiness: database, Redis, workers and inference server, each with its reason when down."""
    results = run_checks()
    healthy = all(result["ok"] for result in results.values())
    return JsonResponse({"status": "ok" if healthy else "unavailable", "components": results},
                        status=200 if healthy else 503)
