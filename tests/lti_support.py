"""An independent LTI 1.3 platform for the lti tests: PyPI lti1p3platform builds and checks the messages and
JWTs; a loopback http.server thread serves its JWKS, token endpoint, NRPS, AGS and dynamic registration.

The tool runs under pytest-django's live_server (real HTTP). ``FakeLMS.launch`` performs the whole
OIDC flow with a ``requests.Session`` standing in for the browser.
"""

import http.cookiejar
import json
import re
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import jwt
import requests
from lti1p3platform.ltiplatform import LTI1P3PlatformConfAbstract
from lti1p3platform.message_launch import LTIAdvantageMessageLaunchAbstract
from lti1p3platform.oidc_login import OIDCLoginAbstract
from lti1p3platform.registration import Registration as PlatformRegistration

from lti.keys import new_key_pair

ROLE = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
CONTAINER = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"


class PlatformConf(LTI1P3PlatformConfAbstract):
    """lti1p3platform's platform configuration holding one registration of the tool."""

    def init_platform_config(self, **kwargs):
        """Keep the registration passed as registration=."""
        self._registration = kwargs["registration"]

    def get_registration_by_params(self, **kwargs):
        """The one registration."""
        return self._registration


class PlatformLogin(OIDCLoginAbstract):
    """Third-party initiated login: returns the URL the browser is sent to."""

    def set_lti_message_hint(self, **kwargs):
        """Any opaque hint (the platform's own reference to the message)."""
        self._lti_message_hint = kwargs["hint"]

    def get_redirect(self, url):
        """The URL itself (the test follows it with requests)."""
        return url


class _AuthRequest:
    def __init__(self, params):
        self.get_data = params
        self.form_data = {}


class PlatformLaunch(LTIAdvantageMessageLaunchAbstract):
    """lti1p3platform's launch; the 'form' is the dict of fields the browser would post."""

    def render_launch_form(self, launch_data, **kwargs):
        """The launch fields (state, id_token, launch_url)."""
        return launch_data


class FakeLMS:
    """The platform: an issuer on a loopback HTTP server, one client_id and deployment for the tool."""

    def __init__(self, tool_url, host="127.0.0.1"):
        """Serve on a loopback port; ``host`` is the name the platform's URLs use (a test resolver may map a
        name such as moodle.test to loopback)."""
        self.tool_url = tool_url
        self.private_pem, self.public_pem = new_key_pair()
        self.client_id = secrets.token_hex(8)[:15]
        self.deployment_id = "7"
        self.members = []  # NRPS members
        self.page_size = 2
        self.lineitems = {}  # id -> line item dict
        self.scores = {}  # line item id -> {userId: score}
        self.score_times = []  # (time.time() when a score was taken, userId): for bench/bench_grade_latency.py
        self.requests = []  # (method, path, headers)
        self.registration_requests = []
        self.token_errors = []
        self.redirects = {}  # path -> Location: answer a GET of that path with a 302
        self.pages = {}  # path -> HTML of a page of the platform (e.g. its admin page framing the tool)
        self.score_failures = 0  # how many score posts to answer with 503 before taking them
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.base = f"http://{host}:{self.server.server_port}"
        self.issuer = self.base
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.registration = (
            PlatformRegistration().set_iss(self.issuer).set_client_id(self.client_id)
            .set_deployment_id(self.deployment_id).set_oidc_login_url(tool_url + "/lti/login")
            .set_launch_url(tool_url + "/lti/launch").set_deeplink_launch_url(tool_url + "/lti/launch")
            .set_platform_public_key(self.public_pem).set_platform_private_key(self.private_pem)
            .set_tool_key_set_url(tool_url + "/lti/jwks"))
        self.conf = PlatformConf(registration=self.registration)

    def close(self):
        """Stop the HTTP server."""
        self.server.shutdown()
        self.server.server_close()

    def register_again(self):
        """The LMS registers the tool once more ("register as a new tool"): a new client_id and deployment."""
        self.client_id = secrets.token_hex(8)[:15]
        self.deployment_id = str(int(self.deployment_id) + 1)
        self.registration.set_client_id(self.client_id).set_deployment_id(self.deployment_id)

    # --- registering the platform with the tool (as an admin would in the Django admin) -------------
    def register_in_tool(self, **overrides):
        """Create the tool-side Registration and Deployment rows for this platform."""
        from lti.models import Deployment, Registration

        fields = {"issuer": self.issuer, "client_id": self.client_id, "auth_login_url": self.base + "/auth",
                  "auth_token_url": self.base + "/token", "key_set_url": self.base + "/jwks",
                  "status": Registration.ACTIVE, **overrides}
        registration = Registration.objects.create(**fields)
        Deployment.objects.create(registration=registration, deployment_id=self.deployment_id)
        return registration

    # --- the launch --------------------------------------------------------------------------------------
    def login(self, browser, user_id):
        """Login initiation into the tool; returns the query the tool sends to the platform's auth endpoint."""
        login = PlatformLogin(None, self.conf)
        login.set_lti_message_hint(hint="resource-1")
        response = browser.get(login.initiate_login(user_id), allow_redirects=False)
        assert response.status_code == 302, response.text
        location = response.headers["Location"]
        assert location.startswith(self.base + "/auth?"), location
        return {k: v[0] for k, v in parse_qs(urlparse(location).query).items()}

    def launch_fields(self, auth_params, user_id, roles, context_id="course-A", *, deep_link=False,
                      name=None, email=None, locale="en-US", custom=None, lineitem=None):
        """(fields to post, the claims) for the auth request: built and signed by lti1p3platform."""
        launch = PlatformLaunch(_AuthRequest(auth_params), self.conf)
        launch.set_user_data(user_id, roles, full_name=name, email_address=email)
        launch.set_launch_context_claim(context_id, context_title=f"Kurs {context_id}", context_label=context_id)
        launch.set_resource_link_claim("link-1", title="Tutor")
        launch.set_launch_presentation_claim(document_target="iframe")
        launch.lti_claim_launch_presentation["https://purl.imsglobal.org/spec/lti/claim/launch_presentation"][
            "locale"] = locale
        launch.set_nrps(self.base + f"/nrps/{context_id}")
        launch.set_ags(self.base + f"/lineitems/{context_id}", lineitem_url=lineitem)
        if custom:
            launch.set_custom_parameters_claim(custom)
        if deep_link:
            launch.set_dl(self.base + "/deep-link-return", title="Place", accept_types={"ltiResourceLink"},
                          extra_data={"data": "opaque-42"})
        fields = launch.lti_launch()
        claims = jwt.decode(fields["id_token"], options={"verify_signature": False})
        return fields, claims

    def launch(self, browser, user_id="user-1", roles=(ROLE + "Learner",), context_id="course-A", **kwargs):
        """The whole launch as a browser does it; returns the tool's response to the id_token post."""
        auth = self.login(browser, user_id)
        fields, _claims = self.launch_fields(auth, user_id, list(roles), context_id, **kwargs)
        return browser.post(fields["launch_url"], data={"state": fields["state"], "id_token": fields["id_token"]},
                            allow_redirects=False)

    def sign(self, claims, private_pem=None, kid=None):
        """Sign claims as this platform (or with another key / kid, for forgeries)."""
        kid = kid or self.registration.get_kid()
        return jwt.encode(claims, private_pem or self.private_pem, algorithm="RS256", headers={"kid": kid})

    # --- the services ----------------------------------------------------------------------------------
    def _handler(self):
        lms = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _json(self, status, data, content_type="application/json", headers=None):
                body = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def _body(self):
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _authorized(self, scopes):
                token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
                try:
                    return lms.conf.validate_token(token, allowed_scopes=scopes)
                except Exception as exc:
                    lms.token_errors.append(repr(exc))
                    return False

            def do_GET(self):
                url = urlparse(self.path)
                lms.requests.append(("GET", self.path, dict(self.headers)))
                if url.path in lms.pages:
                    body = lms.pages[url.path].encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html; charset=utf-8")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return None
                if url.path in lms.redirects:
                    self.send_response(302)
                    self.send_header("Location", lms.redirects[url.path])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                if url.path == "/jwks":
                    return self._json(200, lms.conf.get_jwks())
                if url.path == "/.well-known/openid-configuration":
                    return self._json(200, lms.openid_configuration())
                if url.path.startswith("/nrps/"):
                    if not self._authorized(["https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"]):
                        return self._json(401, {"error": "invalid token"})
                    page = int(parse_qs(url.query).get("page", ["0"])[0])
                    chunk = lms.members[page * lms.page_size:(page + 1) * lms.page_size]
                    headers = {}
                    if (page + 1) * lms.page_size < len(lms.members):
                        headers["Link"] = f'<{lms.base}{url.path}?page={page + 1}>; rel="next"'
                    return self._json(200, {"id": lms.base + self.path, "context": {"id": url.path[6:]},
                                            "members": chunk}, CONTAINER, headers)
                m = re.fullmatch(r"/lineitems/([^/]+)/(\d+)/results", url.path)
                if m:
                    if not self._authorized(["https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly"]):
                        return self._json(401, {"error": "invalid token"})
                    item = lms.lineitems[int(m[2])]
                    return self._json(200, [{"userId": u, "resultScore": s["scoreGiven"],
                                             "resultMaximum": s["scoreMaximum"], "scoreOf": item["id"]}
                                            for u, s in lms.scores.get(int(m[2]), {}).items()])
                if url.path.startswith("/lineitems/"):
                    if not self._authorized(["https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"]):
                        return self._json(401, {"error": "invalid token"})
                    rid = parse_qs(url.query).get("resource_id", [None])[0]
                    items = [i for i in lms.lineitems.values() if rid is None or i.get("resourceId") == rid]
                    return self._json(200, items, "application/vnd.ims.lis.v2.lineitemcontainer+json")
                self._json(404, {"error": "not found"})

            def do_POST(self):
                url = urlparse(self.path)
                body = self._body()
                lms.requests.append(("POST", self.path, dict(self.headers)))
                if url.path == "/token":
                    form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
                    try:
                        return self._json(200, lms.conf.get_access_token(form))
                    except Exception as exc:
                        return self._json(400, {"error": "invalid_client", "error_description": str(exc)})
                if url.path == "/register":
                    lms.registration_requests.append((dict(self.headers), json.loads(body)))
                    answer = dict(json.loads(body), client_id=lms.client_id)
                    answer["https://purl.imsglobal.org/spec/lti-tool-configuration"]["deployment_id"] = lms.deployment_id
                    return self._json(200, answer)
                m = re.fullmatch(r"/lineitems/([^/]+)/(\d+)/scores", url.path)
                if m:
                    if not self._authorized(["https://purl.imsglobal.org/spec/lti-ags/scope/score"]):
                        return self._json(401, {"error": "invalid token"})
                    if lms.score_failures > 0:
                        lms.score_failures -= 1
                        return self._json(503, {"error": "try again later"})
                    score = json.loads(body)
                    lms.scores.setdefault(int(m[2]), {})[score["userId"]] = score
                    lms.score_times.append((time.time(), score["userId"]))
                    self.send_response(204)
                    self.end_headers()
                    return None
                if url.path.startswith("/lineitems/"):
                    if not self._authorized(["https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"]):
                        return self._json(401, {"error": "invalid token"})
                    item = json.loads(body)
                    item_id = len(lms.lineitems) + 1
                    item["id"] = f"{lms.base}{url.path.rstrip('/')}/{item_id}"
                    lms.lineitems[item_id] = item
                    return self._json(201, item, "application/vnd.ims.lis.v2.lineitem+json")
                self._json(404, {"error": "not found"})

        return Handler

    def openid_configuration(self):
        """The platform's OpenID configuration (Moodle-like) for dynamic registration."""
        return {
            "issuer": self.issuer, "authorization_endpoint": self.base + "/auth",
            "token_endpoint": self.base + "/token", "jwks_uri": self.base + "/jwks",
            "registration_endpoint": self.base + "/register",
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "scopes_supported": ["openid"], "response_types_supported": ["id_token"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "https://purl.imsglobal.org/spec/lti-platform-configuration": {
                "product_family_code": "moodle", "version": "5.0",
                "messages_supported": [{"type": "LtiResourceLinkRequest"}, {"type": "LtiDeepLinkingRequest"}]},
        }


def now():
    """Seconds since the epoch, as an int."""
    return int(time.time())


class LoopbackIsSecure(http.cookiejar.DefaultCookiePolicy):
    """As browsers do: http://localhost and http://127.0.0.1 are secure contexts, where Secure cookies (the tool's
    partitioned session and state cookies on loopback) come back."""

    def return_ok_secure(self, cookie, request):
        host = urlparse(request.get_full_url()).hostname
        return host in {"localhost", "127.0.0.1"} or super().return_ok_secure(cookie, request)


class Browser(requests.Session):
    """A cookie-keeping HTTP client that sends Secure cookies to loopback hosts over http, as browsers do."""

    def prepare_request(self, request):
        prepared = super().prepare_request(request)
        jar = requests.cookies.RequestsCookieJar(policy=LoopbackIsSecure())
        jar.update(prepared._cookies)
        prepared.headers.pop("Cookie", None)
        prepared.prepare_cookies(jar)
        return prepared


def browser():
    """A fresh cookie-keeping HTTP client standing in for one browser (top-level: every cookie comes back)."""
    return Browser()
