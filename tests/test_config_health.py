"""Liveness and readiness (config/health.py): /health/live public and minimal; /health/ready only for those who may
read /metrics, its result kept a few seconds so a flood of requests costs one round of checks; the front page and
the proxies keep it inside."""

import threading

import pytest
from django.test import Client

from config import health

FOREIGN = "203.0.113.7"  # an address outside METRICS_ALLOWED_IPS
INTERNALS = ("PostgreSQL", "Redis", "pgvector", "127.0.0.1", "worker")


@pytest.fixture
def counted_checks(monkeypatch, settings):
    """The real checks, each counting its runs; no inference server (the count is what matters)."""
    settings.INFERENCE_URLS = []
    settings.READINESS_CACHE_SECONDS = 60
    runs = {name: 0 for name in health.CHECKS}

    def counting(name, check):
        def run():
            runs[name] += 1
            return check()
        return run

    monkeypatch.setattr(health, "CHECKS", {name: counting(name, check) for name, check in health.CHECKS.items()})
    return runs


def test_liveness_is_public_and_says_nothing_about_the_installation():
    response = Client(REMOTE_ADDR=FOREIGN).get("/health/live")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


@pytest.mark.django_db(transaction=True)
def test_readiness_is_refused_to_strangers_and_through_the_proxy_and_names_nothing_internal(settings, counted_checks):
    settings.METRICS_TOKEN = "s3cret-scrape-token"
    for client, headers in [(Client(REMOTE_ADDR=FOREIGN), {}),
                            (Client(), {"X-Forwarded-For": "127.0.0.1"}),  # loopback, but via the reverse proxy
                            (Client(REMOTE_ADDR=FOREIGN), {"Authorization": "Bearer wrong"})]:
        response = client.get("/health/ready", headers=headers)
        assert response.status_code == 403, headers
        body = response.content.decode()
        assert not any(word in body for word in INTERNALS), body
    assert sum(counted_checks.values()) == 0  # a refused request costs no check

    allowed = Client(REMOTE_ADDR=FOREIGN).get("/health/ready", headers={"Authorization": "Bearer s3cret-scrape-token"})
    assert allowed.status_code in (200, 503)
    assert set(allowed.json()["components"]) == set(health.CHECKS)
    assert "PostgreSQL" in allowed.json()["components"]["database"]["detail"]
    local = Client().get("/health/ready")  # directly from loopback (METRICS_ALLOWED_IPS), as the role asks it
    assert local.status_code in (200, 503) and local["Cache-Control"] == "no-store"


@pytest.mark.django_db(transaction=True)
def test_a_flood_of_readiness_requests_runs_each_check_once(settings, counted_checks):
    statuses = []

    def ask():
        statuses.append(Client().get("/health/ready").status_code)

    threads = [threading.Thread(target=ask) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for _ in range(10):
        ask()
    assert len(statuses) == 20 and len(set(statuses)) == 1 and statuses[0] in (200, 503)
    assert counted_checks == {name: 1 for name in health.CHECKS}
    settings.READINESS_CACHE_SECONDS = 0  # the time is up: the next request checks again
    ask()
    assert counted_checks == {name: 2 for name in health.CHECKS}


@pytest.mark.django_db
def test_the_front_page_does_not_link_readiness(client):
    body = client.get("/").content.decode()
    assert "/health/ready" not in body and "/health/" not in body
