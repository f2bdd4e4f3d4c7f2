"""Pages of the built-in test platform (mounted at /lti/test-platform/ only when settings.LTI_TEST_PLATFORM).

index: pick a demo person -> start: the platform's login initiation into the tool's /lti/login ->
authorize: the platform side of OIDC (checks client_id, redirect_uri, login_hint), signs the id_token
and auto-posts it to the tool's /lti/launch. deep-link-return shows what the tool placed.
"""

import logging
from urllib.parse import urlencode, urlparse

import jwt
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from lti import demo
from lti.keys import tool_jwks

log = logging.getLogger(__name__)


def _error(request, message, reason):
    log.warning("lti test platform: %s", reason)
    return render(request, "lti/error.html", {"message": message}, status=400)


@require_GET
def index(request):
    """Choose a demo person (lecturer, teaching assistant, students) and open the tutor as them."""
    users = [(hint, name, roles[0].rsplit("#", 1)[-1].rsplit("/", 1)[-1]) for hint, (name, roles) in demo.DEMO_USERS.items()]
    return render(request, "lti/test_platform.html", {"users": users, "issuer": demo.issuer()})


@require_GET
def start(request):
    """Third-party initiated login: send the browser to the tool's /lti/login as the chosen demo person."""
    hint = request.GET.get("user", "")
    if hint not in demo.DEMO_USERS:
        return _error(request, _("Please choose one of the demo people."), f"unknown demo user {hint!r}")
    registration = demo.ensure_test_platform()
    target = request.build_absolute_uri(reverse("lti:launch"))
    message = "deep-link" if request.GET.get("deep_link") else "resource"
    params = demo.login_initiation_params(registration, hint, target, message)
    return redirect(reverse("lti:login") + "?" + urlencode(params))


@require_GET
def authorize(request):
    """The platform's OIDC authorization endpoint: validate the tool's request, sign and post the id_token."""
    registration = demo.ensure_test_platform()
    q = request.GET
    hint, redirect_uri = q.get("login_hint", ""), q.get("redirect_uri", "")
    problems = []
    if q.get("client_id") != registration.client_id:
        problems.append("client_id")
    if q.get("response_type") != "id_token" or q.get("scope") != "openid" or not q.get("nonce"):
        problems.append("response_type/scope/nonce")
    if hint not in demo.DEMO_USERS:
        problems.append("login_hint")
    if urlparse(redirect_uri).path != reverse("lti:launch") or urlparse(redirect_uri).netloc != request.get_host():
        problems.append("redirect_uri")
    if problems:
        return _error(request, _("The tool's login request was not valid."), "authorize: bad " + ", ".join(problems))
    deep_linking = q.get("lti_message_hint") == "deep-link"
    id_token = demo.build_id_token(
        registration, hint, q["nonce"], redirect_uri, deep_linking=deep_linking,
        return_url=request.build_absolute_uri(reverse("lti:test-platform-deep-link-return")),
        locale=request.LANGUAGE_CODE or "de")
    return render(request, "lti/autopost.html",
                  {"action": redirect_uri, "fields": {"id_token": id_token, "state": q.get("state", "")}})


@require_GET
def jwks(request):
    """The test platform's public key set."""
    return JsonResponse(demo.platform_jwks())


@csrf_exempt
@xframe_options_exempt
@require_POST
def deep_link_return(request):
    """Receives the tool's LtiDeepLinkingResponse, verifies it against the tool's JWKS and shows the items."""
    registration = demo.ensure_test_platform()
    token = request.POST.get("JWT", "")
    try:
        kid = jwt.get_unverified_header(token).get("kid")
        key = next(k for k in tool_jwks()["keys"] if k["kid"] == kid)
        claims = jwt.decode(token, jwt.PyJWK(key).key, algorithms=["RS256"], audience=registration.issuer,
                            issuer=registration.client_id)
    except (jwt.InvalidTokenError, StopIteration) as exc:
        return _error(request, _("The tool's answer could not be verified."), f"deep link return: {exc}")
    items = claims.get("https://purl.imsglobal.org/spec/lti-dl/claim/content_items", [])
    return render(request, "lti/test_platform_placed.html", {"items": items, "claims": demo.dumps(claims)})


urlpatterns = [
    path("", index, name="test-platform"),
    path("start", start, name="test-platform-start"),
    path("authorize", authorize, name="test-platform-authorize"),
    path("jwks", jwks, name="test-platform-jwks"),
    path("deep-link-return", deep_link_return, name="test-platform-deep-link-return"),
]
