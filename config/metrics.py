"""Prometheus metrics of the whole installation, added up in Redis and served at /metrics.

Every process (web processes, chat workers' threads, ingest and generate workers' prefork children, on any
host) counts into memory (a dict under a lock: a few microseconds, nothing on the network) and a background
thread adds what it counted to Redis every FLUSH_SECONDS (HINCRBYFLOAT in one pipeline). /metrics, on any web
process, reads the sums from Redis and renders them with prometheus-client, together with gauges read at
scrape time (Celery queue lengths, model server slots). So one scrape target shows the whole installation,
workers need no port of their own, and a pod that is replaced loses at most its last few seconds of counts.
prometheus-client's multiprocess mode would need a shared folder per host and a port per worker container.

What is counted is declared in METRICS (name → type, help, labels); deploy/grafana/course-tutor.json and the admin guide use
these names, and tests/test_config_metrics.py checks that they stay in step.
"""

import atexit
import ipaddress
import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlparse

from django.conf import settings

log = logging.getLogger(__name__)

FLUSH_SECONDS = 5.0
PREFIX = "metrics"
LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
MODEL = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
TASK = (0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)


@dataclass(frozen=True)
class Metric:
    """One metric: its type (counter, histogram, gauge: set per process and summed; live: read at scrape
    time), what it means, its label names and, for histograms, the buckets' upper bounds in seconds."""

    kind: str
    help: str
    labels: tuple = ()
    buckets: tuple = ()


METRICS = {
    "tutor_http_requests_total": Metric(
        "counter", "HTTP requests by view (URL name), method and status class", ("view", "method", "status")),
    "tutor_http_request_duration_seconds": Metric(
        "histogram", "Time until the response starts (a streamed answer: until its stream opens), by view",
        ("view", "method"), LATENCY),
    "tutor_sse_streams_open": Metric("gauge", "Answer streams (server-sent events) open in the web processes"),
    "tutor_celery_queue_length": Metric("live", "Tasks waiting in a Celery queue", ("queue",)),
    "tutor_celery_unacked_messages": Metric(
        "live", "Tasks a worker has taken but not finished (acknowledged after the task: acks_late)"),
    "tutor_celery_task_duration_seconds": Metric(
        "histogram", "Run time of a Celery task, by queue and task", ("queue", "task"), TASK),
    "tutor_celery_tasks_total": Metric(
        "counter", "Celery tasks run, by queue, task and state (success, failure, retry)", ("queue", "task", "state")),
    "tutor_inference_queue_wait_seconds": Metric(
        "histogram", "Time a model request waited for a slot of its server (tutor.inference.capacity)", ("endpoint", "kind"),
        MODEL),
    "tutor_inference_time_to_first_token_seconds": Metric(
        "histogram", "Time from sending a streamed request to the model's first piece", ("endpoint", "kind"), MODEL),
    "tutor_inference_request_duration_seconds": Metric(
        "histogram", "Time from sending a model request to its end", ("endpoint", "kind"), MODEL),
    "tutor_inference_tokens_total": Metric(
        "counter", "Tokens the model generated (streamed pieces, or the server's usage count)", ("endpoint", "kind")),
    "tutor_inference_generation_seconds_total": Metric(
        "counter", "Seconds the model spent generating those tokens (first token to end)", ("endpoint", "kind")),
    "tutor_inference_requests_total": Metric(
        "counter", "Model requests by endpoint, kind of work and result (ok or the error code)",
        ("endpoint", "kind", "result")),
    "tutor_inference_slots_in_use": Metric("live", "Slots of a model server held now", ("endpoint",)),
    "tutor_inference_slots_waiting": Metric("live", "Requests waiting for a slot of a model server", ("endpoint",)),
    "tutor_retrieval_duration_seconds": Metric(
        "histogram", "Retrieval time by phase: embed (the question's vector), search (one SQL statement: vector "
        "and full-text halves fused), rerank", ("phase",), LATENCY),
    "tutor_ingest_pages_total": Metric("counter", "Pages of course texts parsed"),
    "tutor_ingest_passages_total": Metric("counter", "Passages embedded"),
    "tutor_ingest_seconds_total": Metric("counter", "Seconds ingest workers spent indexing (parse and embed)"),
    "tutor_periodic_job_last_success_timestamp_seconds": Metric(
        "live", "Unix time of a daily job's last successful run (Celery beat; 0: never)", ("job",)),
}


# --- Counting in this process ------------------------------------------------------------------------------

class _Local:
    """What this process counted since its last flush."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counters = {}  # (name, labels) -> value
        self.histograms = {}  # (name, labels) -> [count per bucket..., +Inf, sum]
        self.gauges = {}  # (name, labels) -> value (this process's)
        self.gauges_changed = set()
        self.pid = os.getpid()
        self.process = f"{socket.gethostname()}:{self.pid}:{int(time.time())}"
        self.thread = None


_local = _Local()


def _state():
    """This process's counts (a forked child starts with none of its parent's)."""
    global _local
    if _local.pid != os.getpid():
        _local = _Local()
    if _local.thread is None:
        with _local.lock:
            if _local.thread is None:
                _local.thread = threading.Thread(target=_flush_forever, name="metrics-flush", daemon=True)
                _local.thread.start()
    return _local


def inc(name, value=1.0, **labels):
    """Add to a counter."""
    key = (name, _label_values(name, labels))
    state = _state()
    with state.lock:
        state.counters[key] = state.counters.get(key, 0.0) + value


def observe(name, seconds, **labels):
    """Count one observation of a histogram."""
    metric = METRICS[name]
    key = (name, _label_values(name, labels))
    index = next((i for i, bound in enumerate(metric.buckets) if seconds <= bound), len(metric.buckets))
    state = _state()
    with state.lock:
        row = state.histograms.get(key)
        if row is None:
            row = state.histograms[key] = [0.0] * (len(metric.buckets) + 2)
        row[index] += 1
        row[-1] += seconds


def gauge_add(name, delta, **labels):
    """Change this process's value of a gauge (the installation's value is the sum over live processes)."""
    key = (name, _label_values(name, labels))
    state = _state()
    with state.lock:
        state.gauges[key] = state.gauges.get(key, 0.0) + delta
        state.gauges_changed.add(key)


def _label_values(name, labels):
    return tuple(str(labels.get(label, "")) for label in METRICS[name].labels)


def endpoint_label(url):
    """A model server's URL as a label: scheme, host, port and path, never a user or password in it."""
    parsed = urlparse(url or "")
    host = parsed.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{host}{port}{parsed.path.rstrip('/')}"


class timer:  # noqa: N801  (used like a function: with metrics.timer(...):)
    """Observe the seconds a block took into a histogram."""

    def __init__(self, name, **labels):
        self.name, self.labels = name, labels

    def __enter__(self):
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc):
        observe(self.name, time.perf_counter() - self.started, **self.labels)


# --- Adding up in Redis --------------------------------------------------------------------------------------

_client = None


def _redis():
    global _client
    if _client is None or getattr(_client, "_metrics_pid", None) != os.getpid():
        import redis

        _client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=3)
        _client._metrics_pid = os.getpid()
    return _client


def _field(labels, suffix=""):
    return json.dumps(labels) + ("|" + suffix if suffix else "")


def flush():
    """Add this process's counts to Redis (and mark the process alive for its gauges); on a Redis error they are
    kept for the next try."""
    state = _local
    if state.pid != os.getpid():
        return
    with state.lock:
        counters, histograms = state.counters, state.histograms
        state.counters, state.histograms = {}, {}
        gauges = {key: state.gauges[key] for key in state.gauges_changed}
        state.gauges_changed = set()
    try:
        pipe = _redis().pipeline(transaction=False)
        for (name, labels), value in counters.items():
            pipe.hincrbyfloat(f"{PREFIX}:{name}", _field(labels), value)
        for (name, labels), row in histograms.items():
            for index, count in enumerate(row[:-1]):
                if count:
                    pipe.hincrbyfloat(f"{PREFIX}:{name}", _field(labels, str(index)), count)
            pipe.hincrbyfloat(f"{PREFIX}:{name}", _field(labels, "sum"), row[-1])
        for (name, labels), value in gauges.items():
            pipe.hset(f"{PREFIX}:{name}", state.process + "|" + _field(labels), value)
        pipe.hset(f"{PREFIX}:alive", state.process, time.time() + 3 * FLUSH_SECONDS)
        pipe.execute()
    except Exception as exc:  # noqa: BLE001  (Redis down: keep the counts, try again)
        log.debug("metrics: could not flush (%s)", exc)
        with state.lock:
            for key, value in counters.items():
                state.counters[key] = state.counters.get(key, 0.0) + value
            for key, row in histograms.items():
                mine = state.histograms.setdefault(key, [0.0] * len(row))
                for index, value in enumerate(row):
                    mine[index] += value
            state.gauges_changed |= set(gauges)


def _flush_forever():
    while True:
        time.sleep(FLUSH_SECONDS)
        flush()


atexit.register(flush)


# --- Reading them: the /metrics endpoint -----------------------------------------------------------------

def allowed(request):
    """Whether this request may read /metrics: with METRICS_TOKEN set, a request carrying it as a bearer token;
    and a request from METRICS_ALLOWED_IPS that did not come through the reverse proxy (no X-Forwarded-For,
    which a client could otherwise set to an allowed address)."""
    import hmac

    token = settings.METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "")
        if hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return True
    if "X-Forwarded-For" in request.headers or "Forwarded" in request.headers:
        return False
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in network for network in settings.METRICS_ALLOWED_NETWORKS)


def exposition(accept=""):
    """(body, content type) of the installation's metrics in Prometheus' text format."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.exposition import choose_encoder

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector())
    encoder, content_type = choose_encoder(accept)
    return encoder(registry), content_type


class _Collector:
    """prometheus-client's view of the sums in Redis and the live gauges."""

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        client = _redis()
        now = time.time()
        alive = {name.decode(): float(until) for name, until in client.hgetall(f"{PREFIX}:alive").items()}
        dead = [name for name, until in alive.items() if until < now]
        if dead:
            client.hdel(f"{PREFIX}:alive", *dead)
        live = _live_values(client)
        for name, metric in METRICS.items():
            labels = list(metric.labels)
            if metric.kind == "counter":
                family = CounterMetricFamily(name.removesuffix("_total"), metric.help, labels=labels)
                for field, value in client.hgetall(f"{PREFIX}:{name}").items():
                    family.add_metric(json.loads(field), float(value))
            elif metric.kind == "histogram":
                family = HistogramMetricFamily(name, metric.help, labels=labels)
                for label_values, (buckets, total) in _histograms(client, name, metric).items():
                    family.add_metric(list(label_values), buckets, total)
            elif metric.kind == "gauge":
                family = GaugeMetricFamily(name, metric.help, labels=labels)
                sums, stale = {}, []
                for field, value in client.hgetall(f"{PREFIX}:{name}").items():
                    process, label_field = field.decode().split("|", 1)
                    if alive.get(process, 0) < now:
                        stale.append(field)
                        continue
                    key = tuple(json.loads(label_field))
                    sums[key] = sums.get(key, 0.0) + float(value)
                if stale:
                    client.hdel(f"{PREFIX}:{name}", *stale)
                if not labels and not sums:
                    sums[()] = 0.0
                for key, value in sums.items():
                    family.add_metric(list(key), value)
            else:
                family = GaugeMetricFamily(name, metric.help, labels=labels)
                for key, value in live.get(name, {}).items():
                    family.add_metric(list(key), value)
            yield family


def _histograms(client, name, metric):
    """{label values: ([(le, cumulative count)…], sum)} of one histogram in Redis."""
    rows = {}
    for field, value in client.hgetall(f"{PREFIX}:{name}").items():
        label_field, part = field.decode().rsplit("|", 1)
        row = rows.setdefault(tuple(json.loads(label_field)), [0.0] * (len(metric.buckets) + 2))
        row[-1 if part == "sum" else int(part)] = float(value)
    result = {}
    for key, row in rows.items():
        running, buckets = 0.0, []
        for bound, count in zip([*map(str, metric.buckets), "+Inf"], row[:-1], strict=True):
            running += count
            buckets.append((bound, running))
        result[key] = (buckets, row[-1])
    return result


CELERY_QUEUES = ("chat", "ingest", "generate", "lti", "default")  # default: what a release before 2026-12 left there


# functions the apps registered (register_collector): each returns {metric: {label values: value}} of live
# gauges declared in METRICS (tutor: the model servers' slots, tutor.inference.health)
COLLECTORS = []


def register_collector(collect):
    """Add an app's live gauges, read at every scrape (called from its AppConfig.ready())."""
    if collect not in COLLECTORS:
        COLLECTORS.append(collect)


def _live_values(client):
    """{metric: {label values: value}} of the gauges read at scrape time."""
    from config import kombu_redis
    from config.celery import app

    lengths = kombu_redis.queue_lengths(app, CELERY_QUEUES)
    queues = {(queue,): float(count) for queue, count in lengths.items()}
    unacked = kombu_redis.unacked_count(client, kombu_redis.unacked_index_key(app))
    values = {"tutor_celery_queue_length": queues, "tutor_celery_unacked_messages": {(): float(unacked)}}
    for collect in COLLECTORS:
        values.update(collect())
    from config.periodic import last_runs

    values["tutor_periodic_job_last_success_timestamp_seconds"] = {
        (job,): at.timestamp() if at else 0.0 for job, at in last_runs().items()}
    return values

