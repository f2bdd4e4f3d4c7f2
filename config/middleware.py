"""Django's own middleware, run on the event loop under ASGI instead of a thread hop per hook.

Django's MiddlewareMixin runs every process_request/process_response of an async request through
sync_to_async, a hand-over to the request's thread and back: seven middlewares cost ~14 hand-overs, about
7 ms of a 2-core machine's time for each request (GET /health/live took 7 ms; every chat question, answer stream
and page paid it). The hooks below do no I/O in the cases run inline; the ones that may touch the database
(saving a changed session, storing flash messages) still go to the thread. A hook that touched the database
on the event loop would fail loudly (Django raises SynchronousOnlyOperation), not block silently.
Under WSGI and the test client (sync requests) nothing changes. Django's CsrfViewMiddleware reads its token from
the session (CSRF_USE_SESSIONS): its hooks go to the thread where that session is still to be loaded from the
database, and run inline where there is none (an API request with a token) or it is loaded already
(config.checks runs Django's deploy checks of it by class).
"""

import time

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.conf import settings
from django.contrib.auth import middleware as auth
from django.contrib.messages import middleware as messages
from django.contrib.sessions import middleware as sessions
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.http.multipartparser import MultiPartParserError
from django.middleware import common, csrf, locale, security
from django.utils.decorators import sync_and_async_middleware

from config import cookies, metrics


class InlineHooks:
    """Runs the middleware's hooks inline on the event loop; response_needs_thread says when not."""

    def response_needs_thread(self, request, response):
        return False

    def request_needs_thread(self, request):
        return False

    async def __acall__(self, request):
        response = None
        if hasattr(self, "process_request"):
            if self.request_needs_thread(request):
                response = await sync_to_async(self.process_request, thread_sensitive=True)(request)
            else:
                response = self.process_request(request)
        response = response or await self.get_response(request)
        if hasattr(self, "process_response"):
            if self.response_needs_thread(request, response):
                response = await sync_to_async(self.process_response, thread_sensitive=True)(request, response)
            else:
                response = self.process_response(request, response)
        return response


class SecurityMiddleware(InlineHooks, security.SecurityMiddleware):
    pass


class SessionMiddleware(InlineHooks, sessions.SessionMiddleware):
    """Django's sessions, with the session found where an LMS iframe without cookies can bring it.

    In this order: a single-use ticket in a GET URL (``?ticket=``, redeemed here by what the access rule
    registered, TICKETS; the response sets the cookie, which the browser keeps where it allows partitioned cookies),
    the header the pages' scripts send, the field of a form posted from such a page, then the cookie.
    ``request.session_via`` says which ('' for none). A redirect answering a request without the cookie carries a
    fresh ticket, so the next page opens too. The cookie is set ``Partitioned`` where
    settings.SESSION_COOKIE_PARTITIONED (config.cookies).
    """

    def request_needs_thread(self, request):
        return request.method == "GET" and TICKET in request.GET  # redeeming asks Redis

    def process_request(self, request):
        key, via = None, ""
        if request.method == "GET" and TICKET in request.GET:
            key = TICKETS["redeem"](request.GET[TICKET]) if TICKETS else None
            via = "ticket" if key else ""
        if key is None and request.headers.get(HEADER):
            key, via = request.headers[HEADER], "header"
        if key is None and request.method == "POST" and request.content_type in FORMS:
            key = _posted_field(request)
            via = "form" if key else ""
        if key is None and request.COOKIES.get(settings.SESSION_COOKIE_NAME):
            key, via = request.COOKIES[settings.SESSION_COOKIE_NAME], "cookie"
        request.session = self.SessionStore(key)
        if via == "ticket" and request.COOKIES.get(settings.SESSION_COOKIE_NAME) == key:
            via = "cookie"  # the browser kept the cookie too (partitioned in an LMS frame): no need to carry it
        elif via == "ticket":
            request.session.modified = True  # set the cookie: later pages come without a ticket where it is kept
        request.session_via = via if key else ""

    def _hands_on(self, request, response):
        return (getattr(request, "session_via", "") in ("ticket", "header", "form") and response.status_code in REDIRECTS
                and response.get("Location", "").startswith("/") and not response["Location"].startswith("//"))

    def response_needs_thread(self, request, response):
        session = getattr(request, "session", None)
        return session is not None and (session.modified or settings.SESSION_SAVE_EVERY_REQUEST
                                        or self._hands_on(request, response))

    def process_response(self, request, response):
        response = super().process_response(request, response)
        if TICKETS and self._hands_on(request, response) and request.session.get("_auth_user_id"):
            ticket = TICKETS["issue"](request.session.session_key)
            response["Location"] = TICKETS["attach"](response["Location"], ticket)
        cookies.partition(response, settings.SESSION_COOKIE_NAME)
        return response


TICKET, HEADER, FIELD = "ticket", "X-Tutor-Session", "tutor_session"  # courses.access names them
# The single-use tickets of the access rule (courses.access), registered in CoursesConfig.ready(): "redeem"
# (ticket -> the session key it names, once, or None), "issue" (session key -> a new ticket), "attach" (URL,
# ticket -> the URL carrying it). Without them a ticket opens nothing and redirects carry none.
TICKETS = {}


def register_session_tickets(redeem, issue, attach):
    """Register how session tickets are redeemed, issued and put into a URL (the access rule's own functions)."""
    TICKETS.update(redeem=redeem, issue=issue, attach=attach)
REDIRECTS = (301, 302, 303, 307, 308)
FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


def _session_unread(request):
    """Whether reading request.session would load it from the database: it has a key and was not read yet."""
    session = getattr(request, "session", None)
    return session is not None and session.session_key is not None and not hasattr(session, "_session_cache")


class CsrfViewMiddleware(InlineHooks, csrf.CsrfViewMiddleware):
    """Django's CSRF protection, unchanged, without three hand-overs to a thread where they do no I/O.

    process_request reads the token from the session and process_response may write it there: inline unless the
    session is still to be loaded from the database. process_view: inline where it accepts without a check (a safe
    method, a view exempt from CSRF as DRF's are, a request already checked); a check of an unsafe request (the
    posted form, the session) goes to the thread. Under ASGI Django hands a sync process_view to a thread itself, so
    the instance's process_view is then a coroutine function.
    """

    def __init__(self, get_response):
        super().__init__(get_response)
        if iscoroutinefunction(get_response):
            self.process_view = self._aprocess_view

    def request_needs_thread(self, request):
        return _session_unread(request)

    def response_needs_thread(self, request, response):
        return bool(request.META.get("CSRF_COOKIE_NEEDS_UPDATE")) and _session_unread(request)

    async def _aprocess_view(self, request, callback, callback_args, callback_kwargs):
        if (getattr(request, "csrf_processing_done", False) or getattr(callback, "csrf_exempt", False)
                or request.method in ("GET", "HEAD", "OPTIONS", "TRACE")):
            return super().process_view(request, callback, callback_args, callback_kwargs)
        return await sync_to_async(super().process_view, thread_sensitive=True)(
            request, callback, callback_args, callback_kwargs)


class LocaleMiddleware(InlineHooks, locale.LocaleMiddleware):
    pass


class CommonMiddleware(InlineHooks, common.CommonMiddleware):
    pass


class AuthenticationMiddleware(InlineHooks, auth.AuthenticationMiddleware):
    pass


class MessageMiddleware(InlineHooks, messages.MessageMiddleware):
    def response_needs_thread(self, request, response):
        storage = getattr(request, "_messages", None)
        return storage is not None and (storage.used or storage.added_new)


@sync_and_async_middleware
def request_metrics(get_response):
    """Counts every request and the time until its response starts, by view (URL name), into config.metrics;
    runs on the event loop under ASGI (no thread hop), and costs a dict update per request. Where the view sent a
    Server-Timing header, that time is added to it as ``app`` (Django's whole part of the request)."""

    def record(request, response, started):
        took = time.perf_counter() - started
        match = getattr(request, "resolver_match", None)
        view = (match.view_name or "other") if match else "unmatched"
        method = request.method if request.method in KNOWN_METHODS else "other"
        metrics.observe("tutor_http_request_duration_seconds", took, view=view, method=method)
        if "Server-Timing" in response:  # a view that names its own parts (the API's search) gets the whole beside
            response["Server-Timing"] += f", app;dur={1000 * took:.2f}"
        metrics.inc("tutor_http_requests_total", view=view, method=method, status=f"{response.status_code // 100}xx")

    if iscoroutinefunction(get_response):
        async def middleware(request):
            started = time.perf_counter()
            response = await get_response(request)
            record(request, response, started)
            return response
    else:
        def middleware(request):
            started = time.perf_counter()
            response = get_response(request)
            record(request, response, started)
            return response
    return middleware


def _posted_field(request):
    """The session field of a posted form, or None; a body Django cannot parse (a multipart type without its
    boundary, a broken upload) brings no session here, and the view answers it with 400 as it does without one."""
    try:
        return request.POST.get(FIELD)
    except (MultiPartParserError, RequestDataTooBig, TooManyFieldsSent, UnicodeDecodeError, ValueError):
        return None


KNOWN_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}
