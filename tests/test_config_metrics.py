"""/metrics: counts of every process added up in Redis, the access rule, a question through the real stack showing
up in every family it touches, the Grafana dashboard in step with the metric names, and JSON log lines."""

import asyncio
import json
import os
import re
import subprocess
import sys

import httpx
import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from config import metrics
from deploy.stack import free_port, stop_process, wait_for_port
from tests.stub_llm import StubLLM
from tests.support import (
    INIT_TEXT,
    ROOT,
    ask_as_the_page,
    make_course,
    make_member,
    point_tutor_at,
    start_worker,
    stop_worker,
    wait_for,
)

DASHBOARD = ROOT / "deploy" / "grafana" / "course-tutor.json"


@pytest.fixture
def clean_metrics():
    """No sums left in Redis from earlier tests."""
    client = metrics._redis()
    keys = list(client.scan_iter(match=f"{metrics.PREFIX}:*"))
    if keys:
        client.delete(*keys)
    yield client


def samples(text):
    """{(sample name, frozenset of labels): value} of an exposition."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(found, name, **labels):
    """The sample's value, or None."""
    return found.get((name, frozenset(labels.items())))


CHILD = """
import django
django.setup()
from config import metrics
metrics.inc("tutor_ingest_pages_total", 7)
metrics.observe("tutor_retrieval_duration_seconds", 0.03, phase="search")
metrics.gauge_add("tutor_sse_streams_open", 2)
metrics.flush()
"""


def test_counts_of_several_processes_add_up(db, clean_metrics):
    """Another process and this one count; /metrics shows the sums, histograms with cumulative buckets, and a
    gauge only while its process is alive."""
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="config.settings")
    subprocess.run([sys.executable, "-c", CHILD], env=env, cwd=ROOT, check=True, timeout=120)
    metrics.inc("tutor_ingest_pages_total", 5)
    metrics.observe("tutor_retrieval_duration_seconds", 0.2, phase="search")
    metrics.flush()

    body, content_type = metrics.exposition()
    assert content_type.startswith("text/plain")
    found = samples(body.decode())
    assert value(found, "tutor_ingest_pages_total") == 12
    assert value(found, "tutor_retrieval_duration_seconds_count", phase="search") == 2
    assert value(found, "tutor_retrieval_duration_seconds_bucket", phase="search", le="0.05") == 1
    assert value(found, "tutor_retrieval_duration_seconds_bucket", phase="search", le="0.25") == 2
    assert value(found, "tutor_retrieval_duration_seconds_bucket", phase="search", le="+Inf") == 2
    assert value(found, "tutor_retrieval_duration_seconds_sum", phase="search") == pytest.approx(0.23)
    assert value(found, "tutor_sse_streams_open") == 2  # the child's, within 3 flush intervals of its last flush
    clean_metrics.hset(f"{metrics.PREFIX}:alive", mapping={
        name: 0 for name in clean_metrics.hkeys(f"{metrics.PREFIX}:alive")})  # every process now looks gone
    assert value(samples(metrics.exposition()[0].decode()), "tutor_sse_streams_open") == 0


@pytest.mark.parametrize("address, headers, token, allowed", [
    ("127.0.0.1", {}, "", True),
    ("::1", {}, "", True),
    ("10.1.2.3", {}, "", False),  # not in METRICS_ALLOWED_IPS
    ("127.0.0.1", {"HTTP_X_FORWARDED_FOR": "127.0.0.1"}, "", False),  # came through the reverse proxy
    ("10.1.2.3", {"HTTP_AUTHORIZATION": "Bearer s3cret-scrape"}, "s3cret-scrape", True),
    ("127.0.0.1", {"HTTP_X_FORWARDED_FOR": "1.2.3.4", "HTTP_AUTHORIZATION": "Bearer s3cret-scrape"},
     "s3cret-scrape", True),
    ("10.1.2.3", {"HTTP_AUTHORIZATION": "Bearer wrong"}, "s3cret-scrape", False),
])
def test_only_the_configured_addresses_or_the_token_read_metrics(db, settings, address, headers, token, allowed):
    settings.METRICS_TOKEN = token
    response = Client(REMOTE_ADDR=address).get("/metrics", **headers)
    assert response.status_code == (200 if allowed else 403)
    if allowed:
        assert "tutor_celery_queue_length" in response.content.decode()


def test_a_question_through_the_stack_shows_in_metrics_and_every_log_line_is_json(
        worker_env, tmp_path, settings, clean_metrics, transactional_db):
    """A chat worker (threads pool) and a web process with LOG_FORMAT=json; a question asked as the chat page
    asks it. /metrics then shows the request by view, the stream, the retrieval, the model's first token and
    tokens, the task's duration on queue chat, and the queue lengths; every line both processes logged is a
    JSON object."""
    settings.MEDIA_ROOT = tmp_path / "media"
    env = dict(worker_env, LOG_FORMAT="json")
    with StubLLM(reply="Der Init-Prozess hat die Nummer 1 [1].", token_delay=0.01) as stub:
        course = make_course(("systemstart.md", INIT_TEXT))
        point_tutor_at(course, stub.url)
        _user, token = make_member(course)
        worker = start_worker(env, tmp_path / "chat.log", "chat", pool="threads", concurrency=4)
        port = free_port()
        web_log = open(tmp_path / "web.log", "w")
        web = subprocess.Popen([sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1",
                                "--port", str(port)], env=env, cwd=ROOT, stdout=web_log, stderr=subprocess.STDOUT)
        try:
            wait_for_port("127.0.0.1", port, "uvicorn", web)
            base = f"http://127.0.0.1:{port}"
            finals = []

            async def ask():
                async with httpx.AsyncClient(timeout=120) as http:
                    await ask_as_the_page(http, base, course.pk, token, "Welche Nummer hat der Init-Prozess?",
                                          lambda event, data: finals.append(data) if event == "final" else None)

            asyncio.run(ask())
            assert finals and finals[-1]["status"] == "done"

            def scraped():
                found = samples(httpx.get(base + "/metrics", timeout=30).text)
                endpoint = metrics.endpoint_label(stub.url)
                wanted = [
                    value(found, "tutor_http_requests_total", view="tutor:ask", method="POST", status="2xx"),
                    value(found, "tutor_http_request_duration_seconds_count", view="tutor:ask", method="POST"),
                    value(found, "tutor_retrieval_duration_seconds_count", phase="search"),
                    value(found, "tutor_retrieval_duration_seconds_count", phase="embed"),
                    value(found, "tutor_inference_time_to_first_token_seconds_count", endpoint=endpoint, kind="chat"),
                    value(found, "tutor_inference_queue_wait_seconds_count", endpoint=endpoint, kind="chat"),
                    value(found, "tutor_inference_tokens_total", endpoint=endpoint, kind="chat"),
                    value(found, "tutor_inference_requests_total", endpoint=endpoint, kind="chat", result="ok"),
                    value(found, "tutor_celery_task_duration_seconds_count", queue="chat",
                          task="tutor.tasks.chat_answer"),
                    value(found, "tutor_celery_tasks_total", queue="chat", task="tutor.tasks.chat_answer",
                          state="success"),
                ]
                return found if all(wanted) else None

            found = wait_for(scraped, 60, "the question's metrics")  # each process flushes every 5 s
            assert value(found, "tutor_inference_tokens_total", endpoint=metrics.endpoint_label(stub.url),
                         kind="chat") == 7  # the reply's 7 word pieces
            assert value(found, "tutor_celery_queue_length", queue="chat") == 0
            assert value(found, "tutor_sse_streams_open") == 0  # the answer's stream has closed
            assert value(found, "tutor_inference_slots_in_use", endpoint=metrics.endpoint_label(stub.url)) == 0
            behind_proxy = httpx.get(base + "/metrics", headers={"X-Forwarded-For": "127.0.0.1"}, timeout=30)
            assert behind_proxy.status_code == 403
        finally:
            stop_worker(worker)
            stop_process(web, grace=20)
            web_log.close()
    for path in (tmp_path / "chat.log", tmp_path / "web.log"):
        # Celery's signal handler prints its shutdown line itself (not through logging), the one exception
        lines = [line for line in path.read_text().splitlines()
                 if line.strip() and not re.match(r"worker: (Warm|Cold) shutdown \(MainProcess\)$", line)]
        assert lines, path
        for line in lines:
            try:
                record = json.loads(line)  # every line a JSON object
            except ValueError:
                raise AssertionError(f"{path.name}: not JSON: {line!r}") from None
            assert {"time", "level", "logger", "message"} <= set(record), line


def test_the_grafana_dashboard_uses_the_metrics_that_exist_and_shows_each():
    """Every metric the dashboard queries exists (config.metrics.METRICS, with Prometheus' _bucket, _count, _sum
    suffixes), and every metric appears on some panel."""
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    used = set(re.findall(r"\btutor_[a-z_]+", " ".join(exprs)))
    known = set(metrics.METRICS)
    for name in used:
        base = re.sub(r"_(bucket|count|sum)$", "", name)
        assert name in known or base in known, name
    shown = {re.sub(r"_(bucket|count|sum)$", "", name) for name in used}
    assert known <= shown, known - shown
    assert all(panel.get("title") for panel in dashboard["panels"])
