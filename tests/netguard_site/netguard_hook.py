"""The test network guard's hook: refuse and record every network connection that leaves the machine.

Installed with ``sys.addaudithook`` in the pytest process (tests/netguard.py) and, through ``sitecustomize`` in
this folder (put first on the children's PYTHONPATH), in every Python process the tests start: Celery workers,
uvicorn, manage.py commands, stub servers. It sees ``socket.connect``, ``socket.sendto`` and ``socket.getaddrinfo``
before the system call, so a refused connection sends nothing. Allowed: loopback addresses and names, Unix
sockets, and the hosts in NETGUARD_ALLOW (the configured inference, database, Redis and LMS hosts). Every child
appends one "start" line and one line per refused connection to the JSON-lines file NETGUARD_LOG.
Standalone on purpose (standard library only): it runs before anything else is importable.
"""

import ipaddress
import json
import os
import socket
import sys
import time

LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}
INET = (socket.AF_INET, socket.AF_INET6)


class NetworkGuardError(ConnectionRefusedError):
    """A connection outside loopback and the configured hosts, refused before anything was sent."""


def host_allowed(host, allowed=()):
    """Whether a connection to host (a name or an address) stays on this machine or goes to a configured host."""
    if host is None:
        return True  # getaddrinfo(None, port): a local wildcard address
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    name = str(host).strip("[]").lower()
    if name in ("", *LOOPBACK_NAMES) or name in allowed:
        return True
    try:
        address = ipaddress.ip_address(name.split("%")[0])
    except ValueError:
        return False  # a name that is not loopback and not configured: resolving it would ask a DNS server
    if getattr(address, "ipv4_mapped", None):
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified


def destination(event, args):
    """The host an audited socket operation would reach, or None when it is no network operation."""
    if event == "socket.getaddrinfo":
        return args[0], args[1]
    if event in ("socket.connect", "socket.sendto"):
        sock, address = args[0], args[-1]
        if sock.family in INET and isinstance(address, tuple):
            return address[0], address[1]
    return None


def _command_line():
    try:
        with open("/proc/self/cmdline", "rb") as cmdline:
            return [part.decode(errors="replace") for part in cmdline.read().split(b"\0") if part]
    except OSError:
        return list(getattr(sys, "argv", []))


class Guard:
    """The audit hook with its allow-list; refusals are kept in .refused and, for children, written to the log."""

    def __init__(self, allowed=(), log_path=None):
        self.allowed = {host.strip("[]").lower() for host in allowed if host}
        self.log_path = log_path
        self.refused = []

    def write(self, record):
        if self.log_path:
            with open(self.log_path, "a") as log:
                log.write(json.dumps(record) + "\n")

    def __call__(self, event, args):
        if not event.startswith("socket."):
            return
        target = destination(event, args)
        if target is None or host_allowed(target[0], self.allowed):
            return
        record = {"kind": "refused", "pid": os.getpid(), "event": event, "host": str(target[0]),
                  "port": target[1] if isinstance(target[1], (int, str, type(None))) else str(target[1]),
                  "command": _command_line()[:6], "time": time.time()}
        self.refused.append(record)
        self.write(record)
        raise NetworkGuardError(f"the test network guard refused {event} to {target[0]!r}:{target[1]!r} "
                                "(only loopback and the configured hosts are allowed)")


def install(allowed=(), log_path=None, announce=False):
    """Add the guard as an audit hook of this process (it cannot be removed again); returns it."""
    guard = Guard(allowed, log_path)
    if announce:
        guard.write({"kind": "start", "pid": os.getpid(), "command": _command_line()[:6], "time": time.time()})
    sys.addaudithook(guard)
    return guard


def install_from_env():
    """In a child process: install the guard configured by the pytest process's environment, if any."""
    log_path = os.environ.get("NETGUARD_LOG")
    if log_path:
        allowed = [host for host in os.environ.get("NETGUARD_ALLOW", "").split(",") if host]
        return install(allowed, log_path, announce=True)
    return None
