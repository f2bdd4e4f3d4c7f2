"""The test network guard (tests/netguard.py): what it allows, and that it refuses a real connection in a child
process before anything is sent. The refusing child runs in a network namespace of its own (``unshare -n``), so
even a broken guard could not send a packet off this machine."""

import json
import os
import shutil
import socket
import subprocess
import sys

import pytest

from tests import netguard
from tests.netguard_site.netguard_hook import Guard, NetworkGuardError, host_allowed


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.0.1", "::1", "[::1]", "localhost", "0.0.0.0", None,
                                  "::ffff:127.0.0.1", "inference.example.edu"])
def test_loopback_and_configured_hosts_are_allowed(host):
    assert host_allowed(host, {"inference.example.edu"})


@pytest.mark.parametrize("host", ["192.0.2.1", "10.1.2.3", "2001:db8::1", "moodle.example.edu", "pypi.org"])
def test_everything_else_is_refused(host):
    assert not host_allowed(host, {"inference.example.edu"})


def test_the_hook_refuses_before_the_call_and_records_it():
    guard = Guard(allowed=["inference.example.edu"])
    with socket.socket() as sock:
        with pytest.raises(NetworkGuardError, match="192.0.2.1"):
            guard("socket.connect", (sock, ("192.0.2.1", 443)))
        guard("socket.connect", (sock, ("127.0.0.1", 5432)))
        guard("socket.connect", (sock, ("inference.example.edu", 8000)))
    with pytest.raises(NetworkGuardError):
        guard("socket.getaddrinfo", ("moodle.example.edu", 443, 0, 0, 0))
    guard("open", ("/etc/hosts", "r", 0))
    assert [(r["event"], r["host"]) for r in guard.refused] == [("socket.connect", "192.0.2.1"),
                                                                 ("socket.getaddrinfo", "moodle.example.edu")]


def test_the_allow_list_is_the_configured_hosts():
    environ = {"INFERENCE_URL": "http://gpu1.example.edu:8000/v1,http://gpu2.example.edu:8000/v1",
               "DATABASE_URL": "postgresql://tutor:secret@db.example.edu:5432/tutor", "REDIS_URL": "redis://127.0.0.1/0",
               "LTI_ALLOWED_PLATFORM_HOSTS": "moodle.example.edu"}
    assert netguard.configured_hosts(environ) == ["127.0.0.1", "db.example.edu", "gpu1.example.edu",
                                                  "gpu2.example.edu", "moodle.example.edu"]


PROBE = """
import socket, sys
with socket.socket() as server:
    server.bind(("127.0.0.1", 0)); server.listen()
    socket.create_connection(server.getsockname(), timeout=2).close()   # loopback: allowed
for target in [("192.0.2.1", 9), ("tutor-probe.example.edu", 443)]:
    try:
        socket.create_connection(target, timeout=2)
    except OSError as exc:
        print(type(exc).__name__, exc)
"""


def test_a_child_process_is_guarded_and_reports_to_the_log(tmp_path):
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.fail("unshare (util-linux) and ip (iproute2) are needed to probe the guard without a way out")
    log = tmp_path / "children.jsonl"
    env = dict(os.environ, NETGUARD_LOG=str(log))  # PYTHONPATH leads with the guard's sitecustomize (netguard.py)
    # a network namespace of its own, with only its loopback up
    result = subprocess.run(["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$0" -c "$1"', sys.executable,
                             PROBE], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("NetworkGuardError") == 2, result.stdout
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["kind"] for r in records] == ["start", "refused", "refused"]
    assert [r["host"] for r in records[1:]] == ["192.0.2.1", "tutor-probe.example.edu"]
    assert records[0]["command"][:2] == [sys.executable, "-c"]


def test_the_summary_names_each_child_by_its_program():
    assert netguard.program(["/usr/bin/python3", "-m", "celery", "-A", "config", "worker"]) == "celery"
    assert netguard.program(["/usr/bin/python3", "/srv/app/manage.py", "migrate"]) == "manage.py"
    assert netguard.program(["/usr/bin/python3", "-c", "import socket\nprint(1)"]) == "python -c"
