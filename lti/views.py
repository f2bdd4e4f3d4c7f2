"""LTI endpoints: OIDC login initiation, launch, the tool's JWKS, deep linking. Logic lives in lti.launch."""

import functools
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

from config import cookies
from courses.access import issue_ticket, with_ticket
from courses.sessions import start_session
from lti import deep_linking, placements
from lti.keys import tool_jwks
from lti.launch import (
    LaunchRejected,
    apply_launch,
    launch_language,
    login_url,
    start_login,
    state_record,
    storage_check,
    validate_launch,
)

log = logging.getLogger(__name__)


def reject(request, exc, status=403):
    """The error page for a refused login/launch, with a WARNING log line naming the reason."""
    log.warning("lti: rejected %s: %s", request.path, exc.reason)
    return render(request, "error.html", {"message": exc.message, "retry_url": exc.retry_url}, status=status)


def launch_url(request):
    """The tool's launch (redirect) URL as this request's host sees it."""
    return request.build_absolute_uri(reverse("lti:launch"))


def keeps_opener(view):
    """Pages of the LTI flow that may run in a window opened from the LMS frame: no Cross-Origin-Opener-Policy
    (Django's default same-origin would cut the new window off from the frame that opened it, and with it the
    deep linking answer handed back to the frame, see lti/static/lti/hand_back.js)."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        response["Cross-Origin-Opener-Policy"] = "unsafe-none"
        return response

    return wrapper


def _in_cross_site_frame(request):
    """Whether the browser says this page opens in another site's iframe (Fetch Metadata)."""
    return request.headers.get("Sec-Fetch-Dest") == "iframe" and request.headers.get("Sec-Fetch-Site") == "cross-site"


@csrf_exempt
@xframe_options_exempt
@never_cache
@keeps_opener
@require_http_methods(["GET", "POST"])
def oidc_login(request):
    """OIDC third-party initiated login: redirect to the platform's authorization endpoint.

    With platform storage (lti_storage_target) or inside another site's iframe, a small page goes first: it
    stores state and nonce in the platform's storage, or finds that cookies work, before it redirects.
    """
    try:
        started = start_login(request, launch_url(request))
    except LaunchRejected as exc:
        return reject(request, exc, status=400)
    new_window = request.GET.get("lti1p3_new_window") or request.POST.get("lti1p3_new_window")
    for name in started.response.cookies:  # the state cookie: partitioned where the browser allows it
        cookies.partition(started.response, name)
    if not started.storage_target and (new_window or not _in_cross_site_frame(request)):
        return started.response
    page = render(request, "lti/login_storage.html", {"config": {
        "mode": "login", "auth_url": started.auth_url, "state": started.state, "nonce": started.nonce,
        "target": started.storage_target, "platform_origin": started.platform_origin,
        "probe_cookies": not started.storage_target,
        "secure": request.is_secure() or settings.SESSION_COOKIE_SECURE, "partitioned": settings.SESSION_COOKIE_PARTITIONED,
        "login_url": started.login_url(), "blocked_url": reverse("lti:login-blocked") + "?state=" + started.state}})
    for name, morsel in started.response.cookies.items():  # the state cookie, for browsers that keep it
        page.cookies[name] = morsel
    return page


@xframe_options_exempt
@never_cache
@keeps_opener
@require_GET
def login_blocked(request):
    """Neither cookies nor platform storage work in this frame: offer the login again in a new window."""
    record = state_record(request.GET.get("state", ""))
    params = (record or {}).get("params") or {}
    log.warning("lti: no cookies and no platform storage in the LMS frame at login (iss %r, client_id %r)",
                params.get("iss"), params.get("client_id"))
    message = _("Your browser blocks the tool's cookies inside the course page, and your learning platform "
                "offers no other way to sign in there. Please open the tool in a new window.")
    if record is None:
        message = _("This sign-in has expired. Please open the tool again from your course.")
    return render(request, "error.html", {
        "message": message, "retry_url": login_url(record, lti1p3_new_window="1") if record else ""})


@csrf_exempt
@xframe_options_exempt
@never_cache
@keeps_opener
@require_POST
def launch(request):
    """The platform posts the id_token here; on success the person lands on the course page.

    The person is signed in with a new session of fixed lifetime; its cookie is partitioned where the browser allows
    it, and the first page is opened with a single-use ticket, so the launch works where no cookie is kept at all.

    Without the state cookie, after a login that used platform storage, a page of the tool first reads
    state and nonce back from the platform's storage and posts them here together with the id_token.
    """
    check = storage_check(request)
    if check is not None:
        log.info("lti: launch without the state cookie; asking the platform's storage (%s)",
                 check["platform_origin"])
        return render(request, "lti/launch_storage.html", {"config": dict(check, mode="launch"),
                                                           "action": launch_url(request)})
    new_window = bool(((state_record(request.POST.get("state", "")) or {}).get("params") or {}).get(
        "lti1p3_new_window"))
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
    start_session(request.session)
    language = launch_language(body)
    if language:
        translation.activate(language)
    if message.is_deep_link_launch():
        response = render(request, "lti/deep_link.html", {
            "course": membership.course, "choices": deep_linking.choices(membership.course),
            "hints": placements.hints(membership.course_id), "gradable": deep_linking.gradable(membership.course),
            "token": deep_linking.make_token(message, membership, new_window=new_window)})
    else:
        ticket = issue_ticket(request.session.session_key)  # the first page: the cookie may not come back
        response = redirect(with_ticket(deep_linking.landing_url(message, membership), ticket))
    if language:
        response.set_cookie(settings.LANGUAGE_COOKIE_NAME, language, samesite=settings.SESSION_COOKIE_SAMESITE,
                            secure=settings.SESSION_COOKIE_SECURE)
        cookies.partition(response, settings.LANGUAGE_COOKIE_NAME)
    return response


@csrf_exempt
@xframe_options_exempt
@keeps_opener
@require_POST
def deep_link(request):
    """The lecturer's choice from the deep-linking page, returned to the platform as a signed response."""
    try:
        request_data = signing.loads(request.POST.get("token", ""), salt=deep_linking.SALT,
                                     max_age=deep_linking.MAX_AGE)
        jwt_value, return_url = deep_linking.response_for(request_data, request.POST.get("choice", ""),
                                                          launch_url(request), graded=bool(request.POST.get("graded")))
    except signing.BadSignature:
        return reject(request, LaunchRejected(_("This placement page has expired. Please start again from "
                                                "your course."), "deep linking token invalid or expired"))
    except LaunchRejected as exc:
        return reject(request, exc, status=400)
    return render(request, "lti/deep_link_return.html", {
        "return_url": return_url, "jwt": jwt_value, "hand_back": bool(request_data.get("nw"))})


@require_GET
def jwks(request):
    """The tool's public keys (active and recently rotated), for platforms verifying our JWTs."""
    return JsonResponse(tool_jwks())
