"""Pages of the built-in test platform (mounted at /lti/test-platform/ only when settings.LTI_TEST_PLATFORM).

index: pick a demo person -> start: the platform's login initiation into the tool's /lti/login ->
authorize: the platform side of OIDC (checks client_id, redirect_uri, login_hint), signs the id_token
and auto-posts it to the tool's /lti/launch. deep-link-return shows what the tool placed.

course: the tool inside an iframe of a course page, as Moodle shows it, beside a platform storage frame
(storage) that answers the tool's lti.put_data / lti.get_data postMessages, so a launch works where the
iframe gets no cookies. With LTI_TEST_PLATFORM_URL (e.g. http://127.0.0.1:8000 beside PUBLIC_URL
http://localhost:8000) the platform and the tool are different sites, as in real life.
"""

import logging
from urllib.parse import urlencode, urlparse

import jwt
from django.conf import settings
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from lti import demo
from lti.keys import tool_jwks
from lti.launch import origin_of
from lti.views import keeps_opener

log = logging.getLogger(__name__)


def _error(request, message, reason):
    log.warning("lti test platform: %s", reason)
    return render(request, "error.html", {"message": message}, status=400)


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
    tool = demo.tool_base()
    target = tool + reverse("lti:launch") if tool else request.build_absolute_uri(reverse("lti:launch"))
    message = "deep-link" if request.GET.get("deep_link") else "resource"
    params = demo.login_initiation_params(registration, hint, target, message)
    if request.GET.get("storage"):
        params["lti_storage_target"] = STORAGE_FRAME
    return redirect(tool + reverse("lti:login") + "?" + urlencode(params))


STORAGE_FRAME = "lti_storage"


def _tool_origins(request):
    return sorted({origin_of(settings.PUBLIC_URL), f"{request.scheme}://{request.get_host()}"})


@keeps_opener  # as Moodle: no Cross-Origin-Opener-Policy, so the tool's new window can answer its frame
@require_GET
def course(request):
    """A course page of the test platform showing the tool in an iframe, with a platform storage frame."""
    hint = request.GET.get("user", "")
    if hint not in demo.DEMO_USERS:
        return _error(request, _("Please choose one of the demo people."), f"unknown demo user {hint!r}")
    query = {"user": hint}
    if request.GET.get("deep_link"):
        query["deep_link"] = "1"
    if request.GET.get("storage", "1") != "0":
        query["storage"] = "1"
    return render(request, "lti/test_platform_course.html", {
        "tool_src": reverse("lti:test-platform-start") + "?" + urlencode(query), "name": demo.DEMO_USERS[hint][0],
        "frame": STORAGE_FRAME, "storage": "storage" in query,
        "capabilities": {"frame": STORAGE_FRAME if "storage" in query else "", "tool_origins": _tool_origins(request)}})


@xframe_options_exempt
@require_GET
def storage(request):
    """The platform storage frame: keeps what the tool's origin puts (in this page's memory) and gives it back."""
    return render(request, "lti/test_platform_storage.html", {"tool_origins": _tool_origins(request)})


@keeps_opener
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
    tool_hosts = {request.get_host(), urlparse(settings.PUBLIC_URL).netloc}
    if urlparse(redirect_uri).path != reverse("lti:launch") or urlparse(redirect_uri).netloc not in tool_hosts:
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
@keeps_opener
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
    path("course", course, name="test-platform-course"),
    path("storage", storage, name="test-platform-storage"),
    path("authorize", authorize, name="test-platform-authorize"),
    path("jwks", jwks, name="test-platform-jwks"),
    path("deep-link-return", deep_link_return, name="test-platform-deep-link-return"),
]
