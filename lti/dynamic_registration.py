"""LTI Dynamic Registration (IMS LTI-DR 1.0, as Moodle 5 does it): the admin pastes /lti/register/ into the LMS.

The LMS opens /lti/register/?openid_configuration=...&registration_token=...; the tool fetches that
configuration (only from the host given), posts its own registration to the platform's
registration_endpoint, and stores the platform. When LTI_ALLOWED_PLATFORM_HOSTS is set, only those hosts
may register and they start active; when it is empty any host may register but starts pending until an
admin activates it in the Django admin (no launches before that).
"""

import logging
from urllib.parse import urlparse

import requests
from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils.translation import gettext as _

from lti.models import Deployment, Registration

log = logging.getLogger(__name__)

PLATFORM_CONFIG = "https://purl.imsglobal.org/spec/lti-platform-configuration"
TOOL_CONFIG = "https://purl.imsglobal.org/spec/lti-tool-configuration"
SCOPES = [
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
    "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/score",
    "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
]


class RegistrationFailed(Exception):
    """Dynamic registration could not complete; ``message`` is for the admin, ``reason`` for the log."""

    def __init__(self, message, reason):
        super().__init__(reason)
        self.message = message
        self.reason = reason


def _host(url):
    parsed = urlparse(url or "")
    return parsed.netloc if parsed.scheme in {"http", "https"} else ""


def tool_registration(base_url):
    """The client registration this tool sends (what Moodle 5 requires, deep linking and AGS/NRPS on)."""
    launch = base_url + reverse("lti:launch")
    return {
        "application_type": "web",
        "response_types": ["id_token"],
        "grant_types": ["implicit", "client_credentials"],
        "initiate_login_uri": base_url + reverse("lti:login"),
        "redirect_uris": [launch],
        "client_name": "Course tutor",
        "jwks_uri": base_url + reverse("lti:jwks"),
        "token_endpoint_auth_method": "private_key_jwt",
        "scope": " ".join(SCOPES),
        TOOL_CONFIG: {
            "domain": urlparse(launch).netloc,
            "target_link_uri": launch,
            "description": "AI course tutor answering from the course's own texts",
            "claims": ["iss", "sub"],
            "messages": [{"type": "LtiDeepLinkingRequest", "target_link_uri": launch, "label": "Course tutor"}],
        },
    }


def _get_json(session, method, url, **kwargs):
    try:
        response = session.request(method, url, timeout=10, **kwargs)
        response.raise_for_status()
        return response.json()
    except (requests.RequestException, ValueError) as exc:
        raise RegistrationFailed(_("The learning platform could not be reached or answered unexpectedly."),
                                 f"{method} {url}: {exc}") from exc


def register(openid_configuration, registration_token, base_url, session=None):
    """Run the whole dynamic registration; returns the stored Registration or raises RegistrationFailed."""
    host = _host(openid_configuration)
    if not host:
        raise RegistrationFailed(_("The registration link is incomplete: it names no platform configuration."),
                                 f"bad openid_configuration {openid_configuration!r}")
    allowed = settings.LTI_ALLOWED_PLATFORM_HOSTS
    if allowed and urlparse(openid_configuration).hostname not in allowed:
        raise RegistrationFailed(_("This learning platform is not on the tool's list of allowed platforms."),
                                 f"{host} is not in LTI_ALLOWED_PLATFORM_HOSTS")
    session = session or requests.Session()
    config = _get_json(session, "GET", openid_configuration)
    issuer = str(config.get("issuer", "")).rstrip("/")
    endpoint = config.get("registration_endpoint", "")
    needed = ["issuer", "authorization_endpoint", "token_endpoint", "jwks_uri", "registration_endpoint"]
    missing = [k for k in needed if not config.get(k)]
    if missing:
        raise RegistrationFailed(_("The platform's configuration is incomplete."), f"config lacks {missing}")
    if _host(issuer) != host or _host(endpoint) != host:
        raise RegistrationFailed(_("The platform's configuration names another host."),
                                 f"issuer {issuer!r} / registration endpoint {endpoint!r} not on {host}")
    headers = {"Authorization": f"Bearer {registration_token}"} if registration_token else {}
    answer = _get_json(session, "POST", endpoint, json=tool_registration(base_url), headers=headers)
    client_id = str(answer.get("client_id") or "")
    deployment_id = str((answer.get(TOOL_CONFIG) or {}).get("deployment_id") or "")
    if not client_id:
        raise RegistrationFailed(_("The platform did not confirm the registration."), "no client_id in answer")
    trusted = urlparse(openid_configuration).hostname in settings.LTI_ALLOWED_PLATFORM_HOSTS
    platform = config.get(PLATFORM_CONFIG) or {}
    with transaction.atomic():
        registration, _created = Registration.objects.update_or_create(
            issuer=issuer, client_id=client_id,
            defaults={"name": platform.get("product_family_code", "") + " " + host,
                      "auth_login_url": config["authorization_endpoint"], "auth_token_url": config["token_endpoint"],
                      "key_set_url": config["jwks_uri"], "auth_audience": config.get("authorization_server", ""),
                      "status": Registration.ACTIVE if trusted else Registration.PENDING})
        if deployment_id:
            Deployment.objects.get_or_create(registration=registration, deployment_id=deployment_id)
    log.info("lti: dynamic registration of %s client %s deployment %s (%s)", issuer, client_id, deployment_id,
             registration.status)
    return registration
