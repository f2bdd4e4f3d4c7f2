"""The page an LMS opens for LTI Dynamic Registration (logic in lti.dynamic_registration)."""

import logging

from django.conf import settings
from django.shortcuts import render
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import require_GET

from lti.dynamic_registration import RegistrationFailed
from lti.dynamic_registration import register as do_register

log = logging.getLogger(__name__)


@xframe_options_exempt
@require_GET
def register(request):
    """Register with the platform named in ?openid_configuration=; the last page tells the LMS to close."""
    base_url = settings.PUBLIC_URL if settings.PRODUCTION else request.build_absolute_uri("/").rstrip("/")
    try:
        registration = do_register(request.GET.get("openid_configuration", ""),
                                   request.GET.get("registration_token", ""), base_url)
    except RegistrationFailed as exc:
        log.warning("lti: dynamic registration failed: %s", exc.reason)
        return render(request, "lti/error.html", {"message": exc.message}, status=400)
    return render(request, "lti/registered.html", {"registration": registration})
