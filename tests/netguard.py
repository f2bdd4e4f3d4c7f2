"""pytest plugin: the suite runs under a network guard, in the pytest process and in every Python child process.

Registered in tests/conftest.py. At start it installs the audit hook of tests/netguard_site/netguard_hook.py in
this process, and puts tests/netguard_site first on PYTHONPATH so that its sitecustomize installs the same hook in
each child (Celery worker, uvicorn, manage.py, stub servers), which report to one log file. Allowed: loopback,
Unix sockets and the configured hosts (INFERENCE_URL, EMBEDDING_URL, RERANK_URL, DATABASE_URL, REDIS_URL,
LTI_ALLOWED_PLATFORM_HOSTS). A refused connection raises in the code that tried it and fails the whole run; the
summary reports the count of outbound connections and how many processes were guarded.
Processes that are not Python (PostgreSQL, Redis, Chromium, containers) are not covered by this hook.
"""

import json
import os
import tempfile
from collections import Counter
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.netguard_site import netguard_hook

SITE = Path(__file__).resolve().parent / "netguard_site"
URL_VARIABLES = ("INFERENCE_URL", "EMBEDDING_URL", "RERANK_URL", "DATABASE_URL", "REDIS_URL")
_state = {}


def configured_hosts(environ):
    """The hosts the configuration lets the product reach (the guard's allow-list beyond loopback)."""
    hosts = set()
    for name in URL_VARIABLES:
        for url in environ.get(name, "").split(","):
            if url.strip():
                hosts.add(urlparse(url.strip()).hostname)
    hosts.update(h.strip() for h in environ.get("LTI_ALLOWED_PLATFORM_HOSTS", "").split(",") if h.strip())
    return sorted(h for h in hosts if h)


def read_log(path):
    """The child processes' records: (started processes, refused connections)."""
    started, refused = [], []
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError:
        return started, refused
    for line in lines:
        record = json.loads(line)
        (started if record["kind"] == "start" else refused).append(record)
    return started, refused


def program(command):
    """A short name for a child's command line: celery, uvicorn, manage.py …, or the module run with -m."""
    if "-c" in command[1:2]:
        return "python -c"
    words = [word for word in command[1:] if not word.startswith("-")]
    if "-m" in command:
        words = command[command.index("-m") + 1:]
    return Path(words[0]).name if words else Path(command[0]).name if command else "?"


def pytest_configure(config):
    log_dir = Path(tempfile.mkdtemp(prefix="netguard-"))
    log_path = log_dir / "children.jsonl"
    allowed = configured_hosts(os.environ)
    _state.update(log=log_path, guard=netguard_hook.install(allowed), allowed=allowed)
    os.environ["NETGUARD_LOG"] = str(log_path)
    os.environ["NETGUARD_ALLOW"] = ",".join(allowed)
    os.environ["PYTHONPATH"] = os.pathsep.join([str(SITE), *filter(None, [os.environ.get("PYTHONPATH")])])


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session, exitstatus):
    started, refused = read_log(_state["log"])
    refused = _state["guard"].refused + refused
    _state.update(started=started, refused=refused)
    if refused and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
    if "refused" not in _state:
        return
    started, refused = _state["started"], _state["refused"]
    programs = Counter(program(record["command"]) for record in started)
    children = ", ".join(f"{count} {name}" for name, count in programs.most_common())
    allowed = ", ".join(["loopback", *_state["allowed"]])
    line = (f"network guard: {len(refused)} outbound connection(s) outside {allowed}; guarded the pytest process "
            f"and {len(started)} child Python process(es){': ' + children if children else ''}")
    terminalreporter.write_sep("-", "network guard", red=bool(refused), green=not refused)
    terminalreporter.write_line(line)
    for record in refused:
        terminalreporter.write_line(f"  REFUSED {record['event']} to {record['host']}:{record['port']} "
                                    f"from pid {record['pid']} {' '.join(record['command'])}", red=True)
