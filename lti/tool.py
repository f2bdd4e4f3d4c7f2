"""pylti1p3 glue: a ToolConf reading the registrations from the database, and the tool's keys."""

import logging
from urllib.parse import urlparse

import requests
from django.conf import settings
from pylti1p3.deployment import Deployment as PyDeployment
from pylti1p3.registration import Registration as PyRegistration
from pylti1p3.tool_config import ToolConfAbstract

from lti.keys import active_key
from lti.models import Deployment, Registration

log = logging.getLogger(__name__)


class ToolRegistration(PyRegistration):
    """A pylti1p3 Registration that knows its database row; the tool's active key is loaded only to sign."""

    model: Registration
    _key = None

    def _active(self):
        if self._key is None:
            self._key = active_key()
        return self._key

    def get_tool_private_key(self):
        """The private PEM of the tool's active key."""
        return self._active().private_pem

    def get_tool_public_key(self):
        """The public PEM of the tool's active key."""
        return self._active().public_pem

    def get_kid(self):
        """The kid of the tool's active key (as published in /lti/jwks)."""
        return self._active().kid


def to_pylti(registration):
    """The pylti1p3 Registration for one of our Registration rows."""
    reg = ToolRegistration()
    reg.set_issuer(registration.issuer).set_client_id(registration.client_id)
    reg.set_auth_login_url(registration.auth_login_url).set_key_set_url(registration.key_set_url)
    reg.set_auth_token_url(registration.auth_token_url or "")
    if registration.auth_audience:
        reg.set_auth_audience(registration.auth_audience)
    reg.model = registration
    reg.local_key_set = False
    for key_set_of in _local_key_sets:  # a platform living in this process: its keys without HTTP to ourselves
        found = key_set_of(registration)
        if found:
            reg.set_key_set(found)
            reg.local_key_set = True
            break
    return reg


_local_key_sets = []


def add_local_key_set(key_set_of):
    """Let key_set_of(registration) give the JWKS of platforms that live in this process (None for others);
    the built-in test platform registers here when it is on (lti.apps)."""
    if key_set_of not in _local_key_sets:
        _local_key_sets.append(key_set_of)


class DatabaseToolConf(ToolConfAbstract):
    """Registrations and deployments from the lti tables; only active registrations launch."""

    def check_iss_has_one_client(self, iss):
        """Never: every issuer may have many client_ids."""
        return False

    def check_iss_has_many_clients(self, iss):
        """Always: look registrations up by (issuer, client_id)."""
        return True

    def __init__(self):
        self._found = {}

    def _registration(self, iss, client_id=None):
        if (iss, client_id) not in self._found:  # one lookup per request, not one per validation step
            rows = Registration.objects.filter(issuer=iss, status=Registration.ACTIVE)
            if client_id:
                rows = rows.filter(client_id=client_id)
            rows = list(rows[:2])
            self._found[(iss, client_id)] = rows[0] if len(rows) == 1 else None
        return self._found[(iss, client_id)]

    def find_registration_by_issuer(self, iss, *args, **kwargs):
        """The issuer's only active registration, else None."""
        row = self._registration(iss)
        return to_pylti(row) if row else None

    def find_registration_by_params(self, iss, client_id, *args, **kwargs):
        """The active registration of (issuer, client_id), else None."""
        row = self._registration(iss, client_id)
        return to_pylti(row) if row else None

    def find_deployment(self, iss, deployment_id):
        """A deployment of the issuer's only registration."""
        row = self._registration(iss)
        return self._deployment(row, deployment_id)

    def find_deployment_by_params(self, iss, deployment_id, client_id, *args, **kwargs):
        """A known deployment of (issuer, client_id), else None."""
        return self._deployment(self._registration(iss, client_id), deployment_id)

    @staticmethod
    def _deployment(row, deployment_id):
        if row is None or not Deployment.objects.filter(registration=row, deployment_id=deployment_id).exists():
            return None
        return PyDeployment().set_deployment_id(deployment_id)


def allowed_hosts():
    """Hosts the tool may contact: LTI_ALLOWED_PLATFORM_HOSTS when set, else those of registered platforms."""
    if settings.LTI_ALLOWED_PLATFORM_HOSTS:
        return set(settings.LTI_ALLOWED_PLATFORM_HOSTS)
    hosts = set()
    for row in Registration.objects.values_list("auth_token_url", "key_set_url", "auth_login_url"):
        hosts.update(urlparse(u).hostname for u in row if u)
    return hosts


class PlatformOnlySession(requests.Session):
    """A requests session that reaches only registered platforms' hosts (GDPR: no other egress): every
    request and every redirect it would follow is checked, so a platform cannot redirect the tool elsewhere."""

    max_redirects = 3

    def request(self, method, url, *args, **kwargs):
        """The request with a timeout (10 s unless given)."""
        kwargs.setdefault("timeout", 10)
        return super().request(method, url, *args, **kwargs)

    def send(self, request, **kwargs):
        """Send one request (the first or a redirect's) only when its host belongs to a registered platform."""
        host = urlparse(request.url).hostname
        if host not in allowed_hosts():
            log.warning("lti: refused outbound request to unregistered host %s", host)
            raise requests.exceptions.InvalidURL(f"{host} is not a registered platform host")
        return super().send(request, **kwargs)
