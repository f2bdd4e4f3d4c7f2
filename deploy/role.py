"""The container image's roles: one image, and the command names what it runs.

``python -m deploy.role web`` serves the ASGI app under uvicorn; ``worker chat|ingest|generate`` runs one Celery
worker for that queue (so each queue scales on its own); ``beat`` runs Celery beat, the clock of the daily
retention jobs (exactly one per installation); ``migrate`` applies the database migrations (once per
release, before the new web and workers start); ``manage …`` runs any manage.py command; ``wait-for-migrations`` waits until the database schema is that of this release (the Kubernetes init container
of web and workers); ``readiness`` prints the web app's /health/ready as seen from inside the container (where it is allowed);
``healthcheck`` is the
image's HEALTHCHECK and the Kubernetes probe for workers: it asks the process the container runs (PID 1) whether it
is alive; ``check-models`` loads every packaged embedding model, offline (run while the image is built).
Every role replaces this process (exec), so signals reach uvicorn or Celery directly.
"""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUEUES = ("chat", "ingest", "generate")
PACKAGED_EMBEDDING_MODELS = ("static", "e5-small", "minilm")


class RoleError(ValueError):
    """A role or its arguments that this image does not know; the message says what it does know."""


def _positive(env, name, default):
    value = env.get(name) or str(default)
    if not value.isdigit() or int(value) < 1:
        raise RoleError(f"{name}={value!r} must be a positive whole number")
    return value


def web_command(env):
    """uvicorn on WEB_HOST:WEB_PORT (0.0.0.0:8000 in the image), trusting X-Forwarded-* from FORWARDED_ALLOW_IPS."""
    return [sys.executable, "-m", "uvicorn", "config.asgi:application",
            "--host", env.get("WEB_HOST", "0.0.0.0"), "--port", env.get("WEB_PORT", "8000"),
            "--proxy-headers", "--no-access-log", "--timeout-graceful-shutdown", "30"]


def worker_command(env, queue):
    """A Celery worker for one queue: chat answers in threads (they wait on the model), batch work one at a time."""
    if queue not in QUEUES:
        raise RoleError(f"unknown queue {queue!r}: use one of {', '.join(QUEUES)}")
    if queue == "chat":
        pool, concurrency = "threads", _positive(env, "CHAT_WORKER_CONCURRENCY", 32)
    else:
        pool, concurrency = "prefork", _positive(env, "WORKER_CONCURRENCY", 1)
    quiet = ["--quiet"] if env.get("LOG_FORMAT") == "json" else []  # no banner: every line is a JSON log line
    return [sys.executable, "-m", "celery", "-A", "config", *quiet, "worker", "-Q", queue, "-n", f"{queue}@%h",
            "--pool", pool, "--concurrency", concurrency, "--loglevel", env.get("LOG_LEVEL", "INFO"),
            "--without-gossip", "--without-mingle"]


def beat_command(env):
    """Celery beat: sends the daily jobs of settings.CELERY_BEAT_SCHEDULE; its schedule state (when each job last
    ran) in BEAT_SCHEDULE_FILE (default /tmp/celerybeat-schedule), no pid file (the image's files are read-only)."""
    quiet = ["--quiet"] if env.get("LOG_FORMAT") == "json" else []
    return [sys.executable, "-m", "celery", "-A", "config", *quiet, "beat",
            "--schedule", env.get("BEAT_SCHEDULE_FILE", "/tmp/celerybeat-schedule"), "--pidfile=",
            "--loglevel", env.get("LOG_LEVEL", "INFO")]


def manage_command(*args):
    """python manage.py with the given arguments."""
    return [sys.executable, str(ROOT / "manage.py"), *args]


def command_for(role, args, env):
    """The argv a role runs, or None for roles this process carries out itself (healthcheck, check-models)."""
    if role == "web" and not args:
        return web_command(env)
    if role == "worker" and len(args) == 1:
        return worker_command(env, args[0])
    if role == "beat" and not args:
        return beat_command(env)
    if role == "migrate" and not args:
        return manage_command("migrate", "--noinput")
    if role == "collectstatic" and not args:
        return manage_command("collectstatic", "--noinput", "--clear", "-v", "0")
    if role == "preflight" and not args:
        return manage_command("preflight")
    if role == "manage" and args:
        return manage_command(*args)
    if role in ("healthcheck", "check-models", "wait-for-migrations", "readiness") and not args:
        return None
    raise RoleError(f"unknown role {' '.join([role, *args])!r}: use web, worker {{{'|'.join(QUEUES)}}}, beat, migrate, "
                    "collectstatic, preflight, manage ARGS…, wait-for-migrations, readiness, healthcheck or check-models")


def main_process_command(proc=Path("/proc/1/cmdline")):
    """The argv of the container's main process (PID 1), which the health check inspects."""
    return [part for part in Path(proc).read_bytes().decode(errors="replace").split("\0") if part]


def healthcheck(env, argv):
    """0 when the role running as argv answers: the web app's /health/live, or a ping to the Celery worker by its
    node name. Other roles (migrate, manage) are one-shot and count as healthy while they run."""
    if "uvicorn" in " ".join(argv[:3]):
        port = argv[argv.index("--port") + 1] if "--port" in argv else env.get("WEB_PORT", "8000")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live", timeout=5) as response:
                return 0 if response.status == 200 else 1
        except OSError as exc:
            print(f"web: {exc}", file=sys.stderr)
            return 1
    if "celery" in " ".join(argv[:3]) and "-n" in argv:
        node = argv[argv.index("-n") + 1].replace("%h", socket.gethostname())
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        from config.celery import app

        replies = app.control.ping(destination=[node], timeout=5)
        if not replies:
            print(f"worker {node} did not answer a ping", file=sys.stderr)
            return 1
        return 0
    return 0


def readiness(env):
    """Print /health/ready of the web app in this container (loopback: allowed without METRICS_TOKEN); 0 when
    every component is ready."""
    import urllib.error

    url = f"http://127.0.0.1:{env.get('WEB_PORT', '8000')}/health/ready"
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            print(response.read().decode())
            return 0
    except urllib.error.HTTPError as exc:
        print(exc.read().decode())
        return 1
    except OSError as exc:
        print(f"web: {exc}", file=sys.stderr)
        return 1


def wait_for_migrations(env, poll=5.0):
    """0 once ``migrate --check`` finds nothing left to apply; 1 after MIGRATIONS_WAIT_SECONDS (default 900)."""
    deadline = time.monotonic() + float(_positive(env, "MIGRATIONS_WAIT_SECONDS", 900))
    while True:
        result = subprocess.run(manage_command("migrate", "--check"), env=env, cwd=ROOT,
                                capture_output=True, text=True)
        if result.returncode == 0:
            print("the database schema is up to date", file=sys.stderr)
            return 0
        if time.monotonic() >= deadline:
            pending = (result.stdout + result.stderr).strip().splitlines()[-5:]
            print("migrations still not applied (is the migrate job running?):", *pending, sep="\n  ", file=sys.stderr)
            return 1
        time.sleep(poll)


def check_models():
    """Load and run every embedding model shipped in the image's packages, with the model hubs switched off."""
    os.environ.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from courses.embeddings import get_embedder

    for name in PACKAGED_EMBEDDING_MODELS:
        embedder = get_embedder(name)
        vector = embedder.embed_passages(["Ein Satz zur Probe. A sentence to check."])[0]
        query = embedder.embed_query("Probe")
        if len(vector) != embedder.dimension or len(query) != embedder.dimension:
            raise SystemExit(f"{name}: vectors of {len(vector)}/{len(query)} dimensions, expected {embedder.dimension}")
        print(f"{name}: {embedder.dimension} dimensions, loaded offline")
    return 0


def configuration_error():
    """The one-line reason the settings refuse to load (config/settings.py), or None: a long-running role stops
    with it before it starts uvicorn or Celery (which would print a traceback instead)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.exceptions import ImproperlyConfigured

    try:
        import config.settings  # noqa: F401
    except ImproperlyConfigured as exc:
        return str(exc)
    return None


def main(argv=None):
    """Run the role named on the command line (default: web)."""
    argv = list(sys.argv[1:] if argv is None else argv) or ["web"]
    role, args = argv[0], argv[1:]
    try:
        command = command_for(role, args, os.environ)
    except RoleError as exc:
        print(f"deploy.role: {exc}", file=sys.stderr)
        return 2
    if role == "healthcheck":
        return healthcheck(os.environ, main_process_command())
    if role == "check-models":
        return check_models()
    if role == "wait-for-migrations":
        return wait_for_migrations(os.environ)
    if role == "readiness":
        return readiness(os.environ)
    if role in ("web", "worker", "beat") and (problem := configuration_error()):
        print(f"Configuration error: {problem}", file=sys.stderr)
        return 2
    os.chdir(ROOT)
    os.execv(command[0], command)


if __name__ == "__main__":
    sys.exit(main())
