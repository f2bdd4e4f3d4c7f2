"""Outbound requests to a platform that is not registered yet: public addresses only, unless an admin allowed
the host; the connection goes to the address that was checked; no redirects, no proxy.

A test resolver maps names under .test (which no real DNS answers) to the addresses under test; refused
addresses are refused before any connection, and everything that is connected to listens on loopback.
"""

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from lti import outbound
from lti.outbound import AddressRefused, checked_session, fetch, refusal

REFUSED = [
    ("127.0.0.1", "loopback"),
    ("127.8.9.10", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.5.4", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "cloud metadata"),
    ("169.254.10.10", "link-local"),
    ("0.0.0.0", "unspecified"),
    ("224.0.0.251", "multicast"),
    ("240.0.0.1", "reserved"),
    ("100.64.1.1", "carrier-grade NAT"),
    ("192.0.2.1", "private"),  # documentation range (Python counts it private)
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fe80::1", "link-local"),
    ("fd12:3456::1", "private"),
    ("ff02::1", "multicast"),
    ("::ffff:127.0.0.1", "IPv4 loopback inside IPv6"),
    ("::ffff:169.254.169.254", "IPv4 cloud metadata inside IPv6"),
    ("::ffff:10.0.0.1", "IPv4 private inside IPv6"),
    ("2002:7f00:1::", "IPv4 loopback inside IPv6"),  # 6to4 of 127.0.0.1
    ("64:ff9b::a00:1", "IPv4 private inside IPv6"),  # NAT64 of 10.0.0.1
]


class Probe:
    """A loopback HTTP server that records each request it gets (and can answer with a redirect)."""

    def __init__(self, redirect_to=None):
        self.seen = []
        probe = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                probe.seen.append((self.path, self.headers.get("Host")))
                if redirect_to:
                    self.send_response(302)
                    self.send_header("Location", redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = b'{"ok": true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def probe():
    server = Probe()
    yield server
    server.close()


@pytest.fixture
def names(monkeypatch):
    """A resolver for names under .test: name -> list of addresses; counts the lookups."""
    table, lookups = {}, []

    def resolve(host, port):
        lookups.append(host)
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, a) for a in table[host]]

    monkeypatch.setattr(outbound, "resolve", resolve)
    return table, lookups


@pytest.mark.parametrize("address, reason", REFUSED)
def test_each_kind_of_internal_address_is_named(address, reason):
    assert refusal(address) == reason


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:93.184.216.34"])
def test_public_addresses_pass(address):
    assert refusal(address) is None


@pytest.mark.parametrize("address, reason", REFUSED)
def test_a_name_resolving_to_an_internal_address_is_refused_before_connecting(names, probe, address, reason):
    table, _lookups = names
    table["moodle.test"] = [address]
    with pytest.raises(AddressRefused) as refused:
        fetch(checked_session(), "GET", f"http://moodle.test:{probe.port}/.well-known/openid-configuration")
    assert f"({reason})" in str(refused.value)
    assert probe.seen == []


def test_every_address_of_a_name_is_checked(names, probe):
    table, _lookups = names
    table["moodle.test"] = ["93.184.216.34", "127.0.0.1"]  # one public answer does not vouch for the other
    with pytest.raises(AddressRefused, match="127.0.0.1 \\(loopback\\)"):
        fetch(checked_session(), "GET", f"http://moodle.test:{probe.port}/")
    assert probe.seen == []


def test_an_allowed_host_may_be_internal_and_is_reached_at_the_checked_address(names, probe):
    table, lookups = names
    table["moodle.test"] = ["127.0.0.1"]
    response = fetch(checked_session(internal_hosts=["MOODLE.test"]), "GET", f"http://moodle.test:{probe.port}/x")

    assert response.json() == {"ok": True}
    # no real DNS knows moodle.test: the connection went to the address the check saw, after one lookup
    assert lookups == ["moodle.test"]
    assert probe.seen == [("/x", f"moodle.test:{probe.port}")]


def test_allowance_is_for_that_host_only(names, probe):
    table, _lookups = names
    table["moodle.test"] = table["other.test"] = ["127.0.0.1"]
    with pytest.raises(AddressRefused):
        fetch(checked_session(internal_hosts=["moodle.test"]), "GET", f"http://other.test:{probe.port}/")
    assert probe.seen == []


def test_an_unknown_name_is_refused(names):
    with pytest.raises(AddressRefused, match="does not resolve"):
        fetch(checked_session(), "GET", "http://nowhere.test/")


def test_a_literal_internal_address_is_refused(probe):
    with pytest.raises(AddressRefused, match="loopback"):
        fetch(checked_session(), "GET", f"http://127.0.0.1:{probe.port}/")
    with pytest.raises(AddressRefused, match="loopback"):
        fetch(checked_session(), "GET", f"http://[::1]:{probe.port}/")
    assert probe.seen == []


def test_redirects_are_not_followed(names, probe):
    table, _lookups = names
    table["moodle.test"] = ["127.0.0.1"]
    redirecting = Probe(redirect_to=f"http://127.0.0.1:{probe.port}/internal")
    try:
        with pytest.raises(requests.TooManyRedirects, match="redirects are not followed"):
            fetch(checked_session(internal_hosts=["moodle.test"]), "GET", f"http://moodle.test:{redirecting.port}/")
        assert redirecting.seen == [("/", f"moodle.test:{redirecting.port}")]
        assert probe.seen == []
    finally:
        redirecting.close()


def test_no_proxy_is_used(names, probe, monkeypatch):
    """A proxy would resolve the name itself, after the check: the environment's proxy is ignored."""
    proxy = Probe()
    try:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
        monkeypatch.setenv("NO_PROXY", "")
        table, _lookups = names
        table["moodle.test"] = ["127.0.0.1"]
        fetch(checked_session(internal_hosts=["moodle.test"]), "GET", f"http://moodle.test:{probe.port}/direct")
        assert proxy.seen == [] and probe.seen == [("/direct", f"moodle.test:{probe.port}")]
    finally:
        proxy.close()
