"""config.asgi under a real ASGI call: a sync view's request (the API, the pages) goes through the request signal,
the middleware and the view on the request's thread in one hand-over, with everything the middleware promises (security headers, the
Content-Security-Policy, CSRF, the token read on every request); async views keep Django's async path."""

import asyncio
import json
import re
from unittest import mock
from urllib.parse import urlencode

import pytest
from asgiref.sync import SyncToAsync
from django.conf import settings
from django.test import override_settings

from config.asgi import ASGIHandler

pytestmark = pytest.mark.django_db(transaction=True)


def call(handler, method, path, headers=(), body=b""):
    """One request through the ASGI handler: (status, {header: value}, body), the headers' names in lower case."""
    path, _sep, query = path.partition("?")
    messages, asked = [], []

    async def receive():
        if not asked:
            asked.append(True)
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)  # no disconnect: Django cancels this when the response is sent

    async def send(message):
        messages.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": query.encode(), "root_path": "",
             "headers": [(b"host", b"localhost"), *((k.lower().encode(), v.encode()) for k, v in headers)],
             "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 80)}
    asyncio.run(handler(scope, receive, send))
    start = messages[0]
    found = {}
    for name, value in start["headers"]:
        found.setdefault(name.decode().lower(), []).append(value.decode())
    content = b"".join(m.get("body", b"") for m in messages[1:])
    return start["status"], found, content


def counted_hand_overs():
    """Patch asgiref's sync_to_async calls to record what each hands to a thread; returns (patcher, names)."""
    names = []
    original = SyncToAsync.__call__

    def counted(self, *args, **kwargs):
        names.append(getattr(self.func, "__qualname__", repr(self.func)))
        return original(self, *args, **kwargs)

    return mock.patch.object(SyncToAsync, "__call__", counted), names


def test_an_api_request_is_one_hand_over_with_its_headers_and_its_token_read_every_time():
    from courses.models import ApiToken, Course, Membership
    from tests.support import make_member

    course = Course.objects.create(title="Kurs")
    lecturer, _session = make_member(course, Membership.INSTRUCTOR)
    token, secret = ApiToken.issue(lecturer, name="t", course=course)
    handler, auth = ASGIHandler(), [("Authorization", f"Bearer {secret}")]
    url = f"/api/v1/courses/{course.pk}/"
    assert call(handler, "GET", url, auth)[0] == 200  # warm-up: first-request work is not counted
    patcher, names = counted_hand_overs()
    with patcher:
        status, headers, content = call(handler, "GET", url, auth)
    assert status == 200 and b'"id":' in content
    assert "frame-ancestors" in headers["content-security-policy"][0]
    assert headers["x-content-type-options"] == ["nosniff"] and "referrer-policy" in headers
    django_s = [name for name in names if not name.startswith("db_in_thread")]
    # request_started, middleware, DRF, the view and its rendering in one; then response.close (request_finished)
    assert django_s == ["ASGIHandler.handle.<locals>.respond", "HttpResponseBase.close"], names
    token.revoke()
    status, headers, content = call(handler, "GET", url, auth)
    assert status == 401 and b"revoked" in content


def recorded_sql():
    """Patch Django's cursors (in every thread) to record each statement; returns (patcher, statements)."""
    from django.db.backends.utils import CursorWrapper

    statements = []
    original = CursorWrapper._execute

    def execute(self, sql, *args, **kwargs):
        statements.append(sql)
        return original(self, sql, *args, **kwargs)

    return mock.patch.object(CursorWrapper, "_execute", execute), statements


def test_an_api_request_with_a_token_does_not_touch_the_session_store():
    """A bearer token's request to the API takes the token chain (config.asgi): no session is read or saved, no
    cookie is set, even where the request also brings a session (its cookie and header); the token alone decides who
    it is. Its security headers, CSP and language are those of every request. Without the token the same request
    reads its session."""
    from courses.models import ApiToken, Course, Membership, PersonSession
    from courses.sessions import SessionStore
    from tests.support import make_member

    course = Course.objects.create(title="Kurs")
    lecturer, session_key = make_member(course, Membership.INSTRUCTOR)
    _learner, learner_key = make_member(course, Membership.LEARNER)
    _token, secret = ApiToken.issue(lecturer, name="t", scope=ApiToken.WRITE, course=course)
    handler, url = ASGIHandler(), f"/api/v1/courses/{course.pk}/"
    session = [("X-Tutor-Session", learner_key), ("Cookie", f"{settings.SESSION_COOKIE_NAME}={learner_key}")]
    assert call(handler, "GET", url, [("Authorization", f"Bearer {secret}")])[0] == 200  # warm-up
    table = PersonSession._meta.db_table
    for headers in ([("Authorization", f"Bearer {secret}")], [("authorization", f"bearer {secret}"), *session]):
        patcher, statements = recorded_sql()
        with patcher, mock.patch.object(SessionStore, "load", side_effect=AssertionError("the session was read")):
            status, found, content = call(handler, "GET", url, headers)
        assert status == 200 and json.loads(content)["access"] == "write"  # the token's lecturer, not the learner
        assert statements and not [sql for sql in statements if table in sql], statements
        assert "set-cookie" not in found and "content-security-policy" in found
        assert found["x-content-type-options"] == ["nosniff"] and found["referrer-policy"]
    status, found, content = call(handler, "GET", url, [("Authorization", "Bearer wrong"), *session])
    assert status == 401  # a session beside a wrong token does not let the request in
    status, found, content = call(handler, "GET", "/api/v1/no-such-thing/",
                                  [("Authorization", f"Bearer {secret}"), ("Accept-Language", "de")])
    assert status == 404 and "Diesen Endpunkt" in json.loads(content)["detail"] and found["content-language"] == ["de"]
    patcher, statements = recorded_sql()
    with patcher:
        status, found, content = call(handler, "GET", url, session[:1])  # the page's own call: its session
    assert status == 200 and json.loads(content)["access"] == "read" and [sql for sql in statements if table in sql]


def test_a_session_s_api_change_without_its_csrf_token_is_still_refused():
    """The pages' calls to the API with the session take the whole chain: a change without the session's CSRF
    token is refused (DRF's SessionAuthentication, Django's check), with it accepted. A header of another scheme
    than Bearer does not take the token chain."""
    from courses.models import Course, Membership
    from tests.support import make_member, session_headers

    course = Course.objects.create(title="Kurs")
    _lecturer, key = make_member(course, Membership.INSTRUCTOR)
    handler, url = ASGIHandler(), f"/api/v1/courses/{course.pk}/settings/"
    body = json.dumps({"sources": 6}).encode()
    typed = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    for without_token in ([("X-Tutor-Session", key), *typed],
                          [("X-Tutor-Session", key), *typed, ("Authorization", "Basic dXNlcjpwdw==")]):
        status, _headers, content = call(handler, "PATCH", url, without_token, body)
        assert status == 403 and json.loads(content)["detail"].startswith("CSRF Failed")
    status, _headers, content = call(handler, "PATCH", url, [*session_headers(key).items(), *typed], body)
    assert status == 200 and json.loads(content)["sources"] == 6


def test_which_requests_take_the_token_chain():
    from config.asgi import token_middleware, token_request

    handler = ASGIHandler()

    def takes(path, *headers):
        scope = {"headers": [(name.encode(), value.encode()) for name, value in headers]}
        return token_request(scope, path, handler.sync_view(path))

    assert takes("/api/v1/courses/", ("authorization", "Bearer abc"))
    assert takes("/api/v1/courses/", ("authorization", "BEARER abc"), ("authorization", "Basic x"))
    assert not takes("/api/v1/courses/", ("authorization", "Basic abc"))
    assert not takes("/api/v1/courses/", ("x-tutor-session", "abc"))
    assert not takes("/health/live", ("authorization", "Bearer abc"))  # not the API
    chain = token_middleware()
    assert "config.middleware.SecurityMiddleware" in chain and "config.csp.ContentSecurityPolicyMiddleware" in chain
    assert not set(chain) & set(settings.API_TOKEN_SKIPS_MIDDLEWARE)
    assert chain == [path for path in settings.MIDDLEWARE if path in chain]  # in MIDDLEWARE's order


def test_the_token_chain_may_not_skip_the_security_headers_or_the_csp():
    from config.checks import token_chain_keeps_the_headers

    assert token_chain_keeps_the_headers(None) == []
    skips = [*settings.API_TOKEN_SKIPS_MIDDLEWARE, "config.middleware.SecurityMiddleware",
             "config.csp.ContentSecurityPolicyMiddleware"]
    with override_settings(API_TOKEN_SKIPS_MIDDLEWARE=skips):
        assert [error.id for error in token_chain_keeps_the_headers(None)] == ["config.E001", "config.E001"]


def test_a_page_s_form_post_is_still_checked_for_its_csrf_token(django_user_model):
    django_user_model.objects.create_superuser("admin", "admin@example.edu", "pw-123456")
    handler = ASGIHandler()
    form = {"username": "admin", "password": "pw-123456", "next": "/admin/"}
    posted = [("Content-Type", "application/x-www-form-urlencoded")]
    status, _headers, _content = call(handler, "POST", "/admin/login/", posted, urlencode(form).encode())
    assert status == 403
    status, headers, content = call(handler, "GET", "/admin/login/")
    assert status == 200 and headers["x-frame-options"] == ["DENY"]
    cookie = "; ".join(c.split(";", 1)[0] for c in headers["set-cookie"])
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', content.decode()).group(1)
    status, headers, _content = call(handler, "POST", "/admin/login/", [*posted, ("Cookie", cookie)],
                                     urlencode({**form, "csrfmiddlewaretoken": token}).encode())
    assert status == 302 and headers["location"] == ["/admin/"]


def test_async_views_and_unknown_paths_keep_django_s_async_path():
    handler = ASGIHandler()
    assert handler.sync_view("/api/v1/courses/") and handler.sync_view("/health/live")
    assert not handler.sync_view("/static/base/base.css")  # config.views.static_file is async
    assert not handler.sync_view("/no/such/page")
    status, headers, content = call(handler, "GET", "/static/base/base.css")
    assert status == 200 and content and "content-security-policy" in headers
    status, _headers, _content = call(handler, "GET", "/no/such/page")
    assert status == 404


def test_a_client_gone_before_its_answer_ends_the_request_once():
    """A client that disconnects while its sync view's request is on its way: the handler returns without an
    error, and the request's end (request_finished: its database connection back to the pool) is signalled once."""
    from django.core.signals import request_finished

    handler, finished = ASGIHandler(), []

    async def gone():
        asked = []

        async def receive():
            if not asked:
                asked.append(True)
                return {"type": "http.request", "body": b"", "more_body": False}
            return {"type": "http.disconnect"}

        async def send(message):
            pass  # uvicorn drops what is sent to a client that left

        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                 "scheme": "http", "path": "/health/live", "raw_path": b"/health/live", "query_string": b"",
                 "root_path": "", "headers": [(b"host", b"localhost")], "client": ("127.0.0.1", 5000),
                 "server": ("127.0.0.1", 80)}
        await handler(scope, receive, send)

    request_finished.connect(lambda **kwargs: finished.append(True), dispatch_uid="gone-finished", weak=False)
    try:
        asyncio.run(gone())
    finally:
        request_finished.disconnect(dispatch_uid="gone-finished")
    assert finished == [True]
