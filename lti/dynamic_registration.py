"""LTI Dynamic Registration (IMS LTI-DR 1.0, as Moodle 5 does it), started by a one-time link an admin made.

The tool's admin creates a registration link (``manage.py registration_link`` or the Django admin) and pastes
it into the LMS. The LMS opens it with ?openid_configuration=...&registration_token=...; the tool fetches that
configuration (only from that host, through lti.outbound: public addresses only unless an admin allowed the
host, no redirects), posts its own registration to the platform's registration_endpoint, and stores the
platform. Without a usable link nothing is fetched. A registration from a host the admin named (the link's
host, LTI_ALLOWED_PLATFORM_HOSTS) starts active; any other starts pending until an admin activates it.
The person sees one generic message on any failure; the reason goes to the log.
"""

import logging
from urllib.parse import urlparse

import requests
from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from lti.models import Deployment, Registration, RegistrationLink
from lti.outbound import checked_session, fetch

log = logging.getLogger(__name__)

LINK_REFUSED = gettext_lazy("This registration link is not valid: it is unknown, already used or expired. "
                            "Ask the administrator of the course tutor for a new one.")
FAILED = gettext_lazy("The registration could not be completed. The administrator of the course tutor finds "
                      "the reason in the tool's log.")
MAX_LINK_HOURS = 24 * 30

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
    return parsed.netloc.lower() if parsed.scheme in {"http", "https"} and parsed.hostname else ""


def link_host(value):
    """The platform host a registration link is for, as an admin types it (``moodle.example.edu``), in lower
    case; "" for none. ValueError (a sentence for the admin) if it is not a bare host name or address, or
    not among LTI_ALLOWED_PLATFORM_HOSTS when that is set."""
    host = (value or "").strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host:
        return ""
    if any(c in host for c in "/?#@ \t") or (":" in host and host.count(":") < 2):
        raise ValueError(_("%(value)s is not a host name: give the host only, e.g. moodle.example.edu "
                           "(no https://, no port, no path).") % {"value": value})
    allowed = settings.LTI_ALLOWED_PLATFORM_HOSTS
    if allowed and host not in allowed:
        raise ValueError(_("%(host)s is not in LTI_ALLOWED_PLATFORM_HOSTS, the only hosts the tool contacts: "
                           "add it there first.") % {"host": host})
    return host


def new_registration_link(allowed_host="", hours=24, note="", link=None, base_url=""):
    """A one-time registration link: (the stored RegistrationLink, the URL to paste into the LMS, shown once).

    ``link`` is an unsaved RegistrationLink to fill in (the admin site's), else a new one is made; ``base_url``: the
    tool's address as the LMS reaches it (default PUBLIC_URL).
    """
    if not 0 < hours <= MAX_LINK_HOURS:
        raise ValueError(_("A registration link is valid for 1 to %(max)d hours, not %(hours)s.")
                         % {"max": MAX_LINK_HOURS, "hours": hours})
    link = link or RegistrationLink()
    link.allowed_host, link.note = link_host(allowed_host), note
    link.expires_at = timezone.now() + timezone.timedelta(hours=hours)
    secret = link.new_secret()
    link.save()
    log.info("lti: registration link %s created for %s, valid until %s", link.pk, link.allowed_host or "any host",
             link.expires_at.isoformat())
    return link, (base_url or settings.PUBLIC_URL).rstrip("/") + reverse("lti:register-link", args=[secret])


def tool_registration(base_url):
    """The client registration this tool sends (what Moodle 5 requires, deep linking and AGS/NRPS on). Its name and
    description carry the tool's host and the day of the registration: after "register as a new tool" the LMS
    lists entries that an admin can tell apart, not several identical "Course tutor"."""
    launch = base_url + reverse("lti:launch")
    host, day = urlparse(launch).netloc, timezone.localdate().isoformat()
    return {
        "application_type": "web",
        "response_types": ["id_token"],
        "grant_types": ["implicit", "client_credentials"],
        "initiate_login_uri": base_url + reverse("lti:login"),
        "redirect_uris": [launch],
        "client_name": f"Course tutor ({host})",
        "jwks_uri": base_url + reverse("lti:jwks"),
        "token_endpoint_auth_method": "private_key_jwt",
        "scope": " ".join(SCOPES),
        TOOL_CONFIG: {
            "domain": host,
            "target_link_uri": launch,
            "description": f"AI course tutor answering from the course's own texts; {host}, registered {day}",
            "claims": ["iss", "sub"],
            "messages": [{"type": "LtiDeepLinkingRequest", "target_link_uri": launch, "label": "Course tutor"}],
        },
    }


def _get_json(session, method, url, **kwargs):
    """The JSON object the platform answers, or RegistrationFailed."""
    try:
        response = fetch(session, method, url, **kwargs)
        response.raise_for_status()
        data = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise RegistrationFailed(FAILED, f"{method} {url}: {exc}") from exc
    if not isinstance(data, dict):
        raise RegistrationFailed(FAILED, f"{method} {url}: the answer is no JSON object")
    return data


def _text(data, key, longest):
    """A string field of the platform's JSON, at most ``longest`` characters, else ""."""
    value = data.get(key)
    return value if isinstance(value, str) and len(value) <= longest else ""


def _link_for(secret, host):
    """The usable link of secret that host may use, claimed (marked used) so a second use fails."""
    link = RegistrationLink.objects.usable().for_secret(secret).first() if secret else None
    if link is None:
        raise RegistrationFailed(LINK_REFUSED, "no usable registration link (unknown, used or expired)")
    if not host:
        raise RegistrationFailed(FAILED, "the LMS named no http(s) openid_configuration URL")
    if link.allowed_host and host != link.allowed_host:
        raise RegistrationFailed(FAILED, f"registration link {link.pk} is for {link.allowed_host}, not {host}")
    allowed = settings.LTI_ALLOWED_PLATFORM_HOSTS
    if allowed and host not in allowed:  # the only hosts the tool contacts at all (lti.tool.allowed_hosts)
        raise RegistrationFailed(FAILED, f"{host} is not in LTI_ALLOWED_PLATFORM_HOSTS")
    if not RegistrationLink.objects.usable().filter(pk=link.pk).update(used_at=timezone.now()):
        raise RegistrationFailed(LINK_REFUSED, f"registration link {link.pk} was used at the same time")
    return link


def register(secret, openid_configuration, registration_token, base_url):
    """Run the whole dynamic registration for a registration link's secret; returns the stored Registration
    or raises RegistrationFailed. No request leaves the tool unless the link is usable; a failed
    registration leaves the link usable for another try."""
    host = urlparse(openid_configuration or "").hostname if _host(openid_configuration) else ""
    link = _link_for(secret, host)
    try:
        registration = _register(link, host, openid_configuration, registration_token, base_url)
    except Exception:
        RegistrationLink.objects.filter(pk=link.pk).update(used_at=None)
        raise
    RegistrationLink.objects.filter(pk=link.pk).update(registration=registration)
    return registration


def _register(link, host, openid_configuration, registration_token, base_url):
    trusted = host == link.allowed_host or host in settings.LTI_ALLOWED_PLATFORM_HOSTS
    session = checked_session(internal_hosts=[host] if trusted else [])
    config = _get_json(session, "GET", openid_configuration)
    needed = ["issuer", "authorization_endpoint", "token_endpoint", "jwks_uri", "registration_endpoint"]
    missing = [k for k in needed if not _text(config, k, 500)]
    if missing:
        raise RegistrationFailed(FAILED, f"configuration lacks {missing} (or they are no URLs of at most 500 "
                                         "characters)")
    elsewhere = [k for k in needed if _host(config[k]) != _host(openid_configuration)]
    if elsewhere:
        raise RegistrationFailed(FAILED, f"configuration names another host than {_host(openid_configuration)} "
                                         f"in {elsewhere}: {[config[k] for k in elsewhere]}")
    headers = {"Authorization": f"Bearer {registration_token}"} if registration_token else {}
    answer = _get_json(session, "POST", config["registration_endpoint"], json=tool_registration(base_url),
                       headers=headers)
    client_id = _text(answer, "client_id", 255)
    tool_config = answer.get(TOOL_CONFIG)
    deployment_id = str(tool_config.get("deployment_id") or "")[:255] if isinstance(tool_config, dict) else ""
    if not client_id:
        raise RegistrationFailed(FAILED, "the platform's answer has no client_id")
    platform = config.get(PLATFORM_CONFIG) if isinstance(config.get(PLATFORM_CONFIG), dict) else {}
    issuer = config["issuer"].rstrip("/")
    name = f"{_text(platform, 'product_family_code', 50)} {_host(openid_configuration)}".strip()[:200]
    with transaction.atomic():
        registration, _created = Registration.objects.update_or_create(
            issuer=issuer, client_id=client_id,
            defaults={"name": name,
                      "auth_login_url": config["authorization_endpoint"], "auth_token_url": config["token_endpoint"],
                      "key_set_url": config["jwks_uri"], "auth_audience": _text(config, "authorization_server", 500),
                      "status": Registration.ACTIVE if trusted else Registration.PENDING})
        if deployment_id:
            Deployment.objects.get_or_create(registration=registration, deployment_id=deployment_id)
    log.info("lti: dynamic registration of %s client %s deployment %s (%s) with link %s", issuer, client_id,
             deployment_id, registration.status, link.pk)
    return registration
