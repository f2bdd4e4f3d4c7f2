"""Outbound HTTP to a learning platform that is not registered yet (dynamic registration).

A registration names a URL the tool then fetches, so the fetch must not reach the institution's own
network: every address the host name resolves to is checked (IPv4 and IPv6: loopback, private, link-local
with the cloud metadata address, unspecified, multicast, reserved, carrier-grade NAT, IPv4 inside IPv6),
the connection goes to an address that was checked (no second DNS lookup that could answer differently),
no redirect is followed and no proxy is used. A host an admin allowed (a registration link's host,
LTI_ALLOWED_PLATFORM_HOSTS) may be on an internal address: that is where many institutions run Moodle.
"""

import contextvars
import ipaddress
import logging
import socket

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util import connection as urllib3_connection

log = logging.getLogger(__name__)

METADATA = ipaddress.ip_address("169.254.169.254")
CARRIER_GRADE_NAT = ipaddress.ip_network("100.64.0.0/10")
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class AddressRefused(requests.exceptions.ConnectionError):
    """The host resolves to an address the tool may not contact (or does not resolve); ``reason`` says why."""


class _Refused(Exception):  # raised inside urllib3 (which would wrap an OSError); the adapter re-raises it
    pass


def _embedded_ipv4(ip):
    """The IPv4 address an IPv6 address carries (mapped, 6to4, Teredo, NAT64), or None."""
    if ip.version != 6:
        return None
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip.sixtofour:
        return ip.sixtofour
    if ip.teredo:
        return ip.teredo[1]
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def refusal(address):
    """Why an IP address is no public internet address ('loopback', 'private', …), or None when it is."""
    ip = ipaddress.ip_address(address.split("%", 1)[0] if isinstance(address, str) else address)
    inner = _embedded_ipv4(ip)
    if inner is not None:
        reason = refusal(inner)
        return f"IPv4 {reason} inside IPv6" if reason else None
    checks = [
        ("cloud metadata", ip == METADATA),
        ("loopback", ip.is_loopback),
        ("unspecified", ip.is_unspecified),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("carrier-grade NAT", ip.version == 4 and ip in CARRIER_GRADE_NAT),
        ("private", ip.is_private and not ip.is_reserved),
        ("reserved", ip.is_reserved),
        ("not global", not ip.is_global),
    ]
    return next((name for name, hit in checks if hit), None)


def resolve(host, port):
    """Every (family, address) the host name resolves to for TCP (the operating system's resolver)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [(family, sockaddr[0]) for family, _type, _proto, _name, sockaddr in infos]


def checked_addresses(host, port, internal_allowed=False):
    """The addresses of host that the tool may connect to; _Refused when any of them is not public
    (unless the admin allowed the host) or the name does not resolve."""
    try:
        found = resolve(host, port)
    except OSError as exc:
        raise _Refused(f"{host} does not resolve: {exc}") from exc
    if not found:
        raise _Refused(f"{host} does not resolve")
    if not internal_allowed:
        for _family, address in found:
            reason = refusal(address)
            if reason:
                raise _Refused(f"{host} resolves to {address} ({reason}), not allowed for this host")
    return list(dict.fromkeys(found))


# The hosts allowed on internal addresses for the request being sent (set by CheckedAdapter.send, read
# where urllib3 opens the connection, in the same thread).
_internal_hosts = contextvars.ContextVar("lti_internal_hosts", default=frozenset())


class _CheckedConnectionMixin:
    def _new_conn(self):
        host = self._dns_host
        addresses = checked_addresses(host, self.port, host.lower() in _internal_hosts.get())
        error = None
        for _family, address in addresses:  # the checked addresses themselves: no second lookup
            try:
                return urllib3_connection.create_connection(
                    (address, self.port), self.timeout, source_address=self.source_address,
                    socket_options=self.socket_options)
            except OSError as exc:
                error = exc
        if isinstance(error, TimeoutError):
            raise ConnectTimeoutError(self, f"Connection to {host} timed out ({self.timeout})") from error
        raise NewConnectionError(self, f"Failed to connect to {host}: {error}") from error


class _CheckedHTTPConnection(_CheckedConnectionMixin, HTTPConnection):
    pass


class _CheckedHTTPSConnection(_CheckedConnectionMixin, HTTPSConnection):
    pass  # TLS still checks the certificate against the host name, not the address


class _CheckedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _CheckedHTTPConnection


class _CheckedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _CheckedHTTPSConnection


class CheckedAdapter(HTTPAdapter):
    """A requests transport that connects only to checked public addresses, or to any address of the hosts
    in ``internal_hosts`` (the admin's allowance); it never uses a proxy."""

    def __init__(self, internal_hosts=()):
        self.internal_hosts = frozenset(h.lower() for h in internal_hosts if h)
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args, **kwargs):
        """urllib3's pool manager, opening connections through the address check."""
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _CheckedHTTPPool, "https": _CheckedHTTPSPool}

    def send(self, request, **kwargs):
        """Send without a proxy (a proxy would resolve the name itself); AddressRefused for a refused host."""
        kwargs["proxies"] = {}
        token = _internal_hosts.set(self.internal_hosts)
        try:
            return super().send(request, **kwargs)
        except _Refused as exc:
            raise AddressRefused(str(exc), request=request) from None
        finally:
            _internal_hosts.reset(token)


def checked_session(internal_hosts=()):
    """A requests session for a platform that is not registered yet: checked addresses (send through
    fetch, which follows no redirect)."""
    session = requests.Session()
    adapter = CheckedAdapter(internal_hosts)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def fetch(session, method, url, **kwargs):
    """One request without following redirects; a redirect is an error (its target was not checked)."""
    response = session.request(method, url, allow_redirects=False, timeout=10, **kwargs)
    if response.is_redirect or response.is_permanent_redirect:
        raise requests.exceptions.TooManyRedirects(
            f"{method} {url} answered {response.status_code} to {response.headers.get('Location')!r}; "
            "redirects are not followed", response=response)
    return response
