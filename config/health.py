"""Liveness and readiness: each component's state with a clear reason when it is down (the project's own
components here; an app adds its own with register_check, e.g. tutor the model servers).

``/health/live`` is public and says nothing but "ok". ``/health/ready`` names internal hosts and versions and costs a
Celery broadcast and a call to every model server: it is guarded like /metrics (METRICS_TOKEN, or directly from
METRICS_ALLOWED_IPS) and its result is kept READINESS_CACHE_SECONDS per process, so a flood costs one round of checks.
"""

import threading
import time

import redis
from django.conf import settings
from django.core.signals import setting_changed
from django.db import connection
from django.dispatch import receiver
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from config import metrics


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
    """At least one Celery worker answers on each queue chat, ingest, generate and lti."""
    from config.celery import app

    replies = app.control.inspect(timeout=1.5).active_queues() or {}
    served = {queue["name"] for queues in replies.values() for queue in queues}
    missing = [q for q in ("chat", "ingest", "generate", "lti") if q not in served]
    if not replies:
        raise RuntimeError("no Celery worker answered")
    if missing:
        raise RuntimeError(f"no worker consumes queue(s): {', '.join(missing)}")
    return f"{len(replies)} worker(s) on {', '.join(sorted(served))}"


def check_periodic():
    """When each daily job (Celery beat, config.periodic) last succeeded; informational: a late retention run is
    an alert for the admin (/metrics), not a reason to take the web app out of service."""
    from django.utils.timezone import localtime

    from config.periodic import last_runs

    return "; ".join(f"{job} {localtime(at).isoformat(timespec='minutes') if at else 'never'}"
                     for job, at in last_runs().items())


# name -> check: returns a line that says what answers, or raises with the reason; the apps add theirs
# (register_check; tutor: "inference", the model servers)
CHECKS = {
    "database": check_database,
    "redis": check_redis,
    "workers": check_workers,
    "periodic": check_periodic,
}


def register_check(name, check):
    """Add an app's readiness check (called from its AppConfig.ready()); the daily jobs' summary stays last."""
    CHECKS[name] = check
    CHECKS["periodic"] = CHECKS.pop("periodic")


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


_cached = {}  # "at" (time.monotonic()), "results": the last round of checks in this process
_cache_lock = threading.Lock()


def cached_checks():
    """Every check's result, run at most once per READINESS_CACHE_SECONDS in this process (callers that arrive
    while a round runs wait for it instead of starting their own)."""
    with _cache_lock:
        fresh = time.monotonic() - _cached.get("at", float("-inf")) < settings.READINESS_CACHE_SECONDS
        if not fresh or "results" not in _cached:
            _cached["results"] = run_checks()
            _cached["at"] = time.monotonic()
        return _cached["results"]


@receiver(setting_changed)
def _forget_cached_checks(**kwargs):
    """A changed setting (tests) may change every answer: the next readiness request checks again."""
    _cached.clear()


@require_GET
def live(request):
    """Liveness: the web process answers (public; nothing about the installation)."""
    return JsonResponse({"status": "ok"})


@require_GET
def ready(request):
    """Readiness: database, Redis, workers, inference server and daily jobs, each with its reason when down; only
    for those who may read /metrics."""
    if not metrics.allowed(request):
        return JsonResponse({"status": "forbidden",
                             "detail": "readiness: not from this address (see METRICS_ALLOWED_IPS, METRICS_TOKEN)"},
                            status=403)
    results = cached_checks()
    healthy = all(result["ok"] for result in results.values())
    response = JsonResponse({"status": "ok" if healthy else "unavailable", "components": results},
                            status=200 if healthy else 503)
    response["Cache-Control"] = "no-store"
    return response
