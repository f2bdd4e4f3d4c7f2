"""The page an LMS opens for LTI Dynamic Registration (logic in lti.dynamic_registration)."""

import logging
import re
from urllib.parse import urlparse

from django.conf import settings
from django.shortcuts import render
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import require_GET

from lti.dynamic_registration import LINK_REFUSED, RegistrationFailed
from lti.dynamic_registration import register as do_register

log = logging.getLogger(__name__)


def _framed_by_platform(response, openid_configuration):
    """Moodle shows this page in an iframe of its own admin page, before the platform is registered (or
    active): allow exactly the origin the LMS named, besides the tool itself."""
    response["Content-Security-Policy"] = " ".join(["frame-ancestors 'self'", *_origin(openid_configuration)])
    return response


def _origin(url):
    """[scheme://host[:port]] of a URL, or [] when it is not a plain http(s) URL (nothing else goes into the
    header)."""
    try:
        parsed = urlparse(url)
        port = parsed.port
    except ValueError:
        return []
    host = parsed.hostname or ""
    if parsed.scheme not in {"http", "https"} or not re.fullmatch(r"[a-z0-9.-]+|[0-9a-f:]+", host):
        return []
    host = f"[{host}]" if ":" in host else host
    return [f"{parsed.scheme}://{host}" + (f":{port}" if port else "")]


@xframe_options_exempt
@require_GET
def register(request, secret=""):
    """Register with the platform named in ?openid_configuration= when the path holds a usable registration
    link; the page says what happened and tells the LMS to close it when the admin clicks Close."""
    base_url = settings.PUBLIC_URL if settings.PRODUCTION else request.build_absolute_uri("/").rstrip("/")
    openid_configuration = request.GET.get("openid_configuration", "")
    try:
        registration = do_register(secret, openid_configuration, request.GET.get("registration_token", ""),
                                   base_url)
    except RegistrationFailed as exc:
        log.warning("lti: dynamic registration failed: %s", exc.reason)
        status = 403 if exc.message is LINK_REFUSED else 400
        response = render(request, "lti/error.html", {"message": exc.message}, status=status)
    else:
        response = render(request, "lti/registered.html", {"registration": registration})
    return _framed_by_platform(response, openid_configuration)
