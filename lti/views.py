"""LTI endpoints: OIDC login initiation, launch, the tool's JWKS, deep linking. Logic lives in lti.launch."""

import logging

from django.conf import settings
from django.contrib.auth import login
from django.core import signing
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from lti import deep_linking
from lti.access import make_launch_token, tool_url
from lti.keys import tool_jwks
from lti.launch import LaunchRejected, apply_launch, launch_language, start_login, validate_launch

log = logging.getLogger(__name__)


def reject(request, exc, status=403):
    """The error page for a refused login/launch, with a WARNING log line naming the reason."""
    log.warning("lti: rejected %s: %s", request.path, exc.reason)
    return render(request, "lti/error.html", {"message": exc.message}, status=status)


def launch_url(request):
    """The tool's launch (redirect) URL as this request's host sees it."""
    return request.build_absolute_uri(reverse("lti:launch"))


@csrf_exempt
@xframe_options_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def oidc_login(request):
    """OIDC third-party initiated login: redirect to the platform's authorization endpoint."""
    try:
        return start_login(request, launch_url(request))
    except LaunchRejected as exc:
        return reject(request, exc, status=400)


@csrf_exempt
@xframe_options_exempt
@never_cache
@require_POST
def launch(request):
    """The platform posts the id_token here; on success the person lands on the course page."""
    try:
        message = validate_launch(request)
        membership = apply_launch(request, message)
    except LaunchRejected as exc:
        return reject(request, exc)
    body = message.get_launch_data()
    if message.is_deep_link_launch() and not membership.is_teaching:
        return reject(request, LaunchRejected(_("Only the course's teachers may place the tutor."),
                                              "deep linking request from a non-teaching role"))
    login(request, membership.user, backend="django.contrib.auth.backends.ModelBackend")
    language = launch_language(body)
    if language:
        translation.activate(language)
    if message.is_deep_link_launch():
        response = render(request, "lti/deep_link.html", {
            "course": membership.course, "choices": deep_linking.choices(),
            "token": deep_linking.make_token(message, membership)})
    else:
        token = make_launch_token(membership.user_id, membership.course_id)
        response = redirect(tool_url("tutor:home", membership.course_id, token=token))
    if language:
        response.set_cookie(settings.LANGUAGE_COOKIE_NAME, language, samesite=settings.SESSION_COOKIE_SAMESITE,
                            secure=settings.SESSION_COOKIE_SECURE)
    return response


@csrf_exempt
@xframe_options_exempt
@require_POST
def deep_link(request):
    """The lecturer's choice from the deep-linking page, returned to the platform as a signed response."""
    try:
        request_data = signing.loads(request.POST.get("token", ""), salt=deep_linking.SALT,
                                     max_age=deep_linking.MAX_AGE)
        jwt_value, return_url = deep_linking.response_for(request_data, request.POST.get("choice", ""),
                                                          launch_url(request))
    except signing.BadSignature:
        return reject(request, LaunchRejected(_("This placement page has expired. Please start again from "
                                                "your course."), "deep linking token invalid or expired"))
    except LaunchRejected as exc:
        return reject(request, exc, status=400)
    return render(request, "lti/deep_link_return.html", {"return_url": return_url, "jwt": jwt_value})


@require_GET
def jwks(request):
    """The tool's public keys (active and recently rotated), for platforms verifying our JWTs."""
    return JsonResponse(tool_jwks())
