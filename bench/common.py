"""What the benchmarks share: throwaway PostgreSQL+pgvector and Redis with the app migrated, percentiles, and
the CPU's flags (bf16/AMX paths are faster only where they exist, so every benchmark prints them)."""

import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from deploy.stack import PYTHON, Stack, free_port, start_postgres, start_redis  # noqa: E402


def pct(values, q):
    """The q-th percentile (0–100) of values (nearest rank); nan for none."""
    values = sorted(values)
    if not values:
        return float("nan")
    return values[min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))]


def cpu_flags():
    """(model name, its vector flags) of this machine's CPU."""
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")), "?")
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return model, " ".join(sorted({f for f in flags if f.startswith(("avx", "amx")) or f in ("fma", "f16c")}))


@contextmanager
def throwaway_services(keep_logs="", **environment):
    """Throwaway PostgreSQL and Redis in a temporary folder, the test deployment's settings plus `environment`
    exported, the database migrated and Django set up. Yields (stack, env, scratch folder, log file); stops
    everything and removes the folder afterwards (the services' log is copied to keep_logs if given)."""
    scratch = Path(tempfile.mkdtemp(prefix="tutor-bench-"))
    stack = Stack()
    pg_port, redis_port = free_port(), free_port()
    os.environ.update({
        "DJANGO_ENV": "test", "DJANGO_SETTINGS_MODULE": "config.settings", "TUTOR_DATA_DIR": str(scratch / "data"),
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{pg_port}/tutor",
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
        "CHAT_RATE_LIMIT": "1000000", "PYTHONUNBUFFERED": "1", **environment,
    })
    env = dict(os.environ)
    logs = open(scratch / "services.log", "ab")
    try:
        start_postgres(stack, scratch / "pgdata", pg_port, "tutor")
        start_redis(stack, scratch / "redis", redis_port)
        subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], env=env, cwd=ROOT, check=True)
        import django

        django.setup()
        yield stack, env, scratch, logs
    finally:
        stack.stop()
        logs.close()
        if keep_logs:
            shutil.copy(scratch / "services.log", keep_logs)
        shutil.rmtree(scratch, ignore_errors=True)


def start_chat_side(stack, env, logs, *, threads=32, log_level="WARNING", backlog=4096, port=None):
    """A chat worker on a threads pool and one uvicorn web process (on port, else a free one), as the run command
    starts them; waits until both answer. Returns (chat worker process, web process, web base URL)."""
    import time

    from config.celery import app
    from deploy.stack import wait_for_port

    port = port or free_port()
    worker = stack.spawn("chat-worker", [PYTHON, "-m", "celery", "-A", "config", "worker", "-Q", "chat", "-n",
                                         "bench-chat@%h", "--pool", "threads", "--concurrency", str(threads),
                                         "--loglevel", log_level, "--without-gossip", "--without-mingle"],
                         env=env, stdout=logs, stderr=subprocess.STDOUT)
    web = stack.spawn("web", [PYTHON, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1",
                              "--port", str(port), "--no-access-log", "--log-level", "warning",
                              "--backlog", str(backlog)], env=env, stdout=logs, stderr=subprocess.STDOUT)
    wait_for_port("127.0.0.1", port, "web server", web)
    deadline = time.monotonic() + 60
    while not app.control.ping(timeout=0.5) and time.monotonic() < deadline:
        pass
    model, flags = cpu_flags()
    print(f"machine: {os.cpu_count()} cores, {model}; flags: {flags}", flush=True)
    return worker, web, f"http://127.0.0.1:{port}"


def metric_means():
    """{(histogram name, its labels as sorted tuples): (count, mean seconds)} of the installation's histograms
    in /metrics (config.metrics), after every process has flushed its counts."""
    import time

    from prometheus_client.parser import text_string_to_metric_families

    from config import metrics

    time.sleep(metrics.FLUSH_SECONDS * 1.5)
    sums = {}
    for family in text_string_to_metric_families(metrics.exposition()[0].decode()):
        for sample in family.samples:
            if sample.name.endswith(("_sum", "_count")):
                key = (sample.name.rsplit("_", 1)[0], tuple(sorted(sample.labels.items())))
                sums.setdefault(key, {})[sample.name.rsplit("_", 1)[1]] = sample.value
    return {key: (parts.get("count", 0), parts.get("sum", 0) / max(1, parts.get("count", 0)))
            for key, parts in sums.items()}


def queue_generation(course, section, items):
    """Queue `items` question sets of one question each over the section on the generate queue (batch load)."""
    from tutor.questions.models import QuestionSet
    from tutor.questions.tasks import generate_questions

    sets = []
    for i in range(items):
        made = QuestionSet.objects.create(course=course, title=f"Bench {i}", requested=1,
                                          generation=QuestionSet.QUEUED)
        made.sections.set([section])
        sets.append(made.pk)
    for pk in sets:
        generate_questions.delay(pk)
    return sets
