"""What every endpoint of the API (``/api/v1/``, Django REST framework) shares: errors as RFC 9457 problem details,
pagination, the per-token rate limit, ETag/If-Match on updates and async endpoints that answer with server-sent
events (the schema's own parts: config/api_schema.py). The endpoints themselves live with their apps
(``courses/api.py``, ``tutor/chat/api.py``, ``tutor/questions/api.py``); the URLs, the OpenAPI schema and its docs
page in ``config/api_urls.py``; who may do what in a course is ``courses.access``'s.
"""

import functools
import hashlib
import json
import logging
from http import HTTPStatus

from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, pagination, renderers, throttling
from rest_framework.response import Response

from config import ratelimit
from config.errors import ProblemError
from config.threads import db_in_thread

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"


# --- Errors: RFC 9457 problem details ------------------------------------------------------------------------

class Invalid(exceptions.APIException):
    """A request the domain refused with a message for the person (the same text the pages show): 400."""

    status_code = 400
    default_detail = gettext_lazy("The request is not valid.")
    default_code = "invalid"


class Conflict(exceptions.APIException):
    """A request that does not fit the resource's state (e.g. exporting a set that is not released): 409."""

    status_code = 409
    default_detail = gettext_lazy("This cannot be done in the current state.")
    default_code = "conflict"


class PreconditionFailed(exceptions.APIException):
    """An update whose If-Match names an older version of the resource: 412."""

    status_code = 412
    default_detail = gettext_lazy("Someone else changed this in the meantime. Load it again, then repeat your change.")
    default_code = "precondition_failed"


def problem(status, detail="", *, code="", errors=None, instance=""):
    """An RFC 9457 problem details object (type about:blank: the title is the status's phrase)."""
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status}
    if detail:
        body["detail"] = str(detail)
    if code:
        body["code"] = code
    if errors:
        body["errors"] = errors
    if instance:
        body["instance"] = instance
    return body


class DomainProblem(exceptions.APIException):
    """An app's refusal (config.errors.ProblemError) as an API exception of its status and code."""

    def __init__(self, exc):
        super().__init__(str(exc), exc.code)
        self.status_code = exc.status
        if exc.retry_after is not None:
            self.wait = exc.retry_after  # DRF's handler writes Retry-After


def _domain_error(exc):
    """The API exception for a refusal of the domain modules (their messages are meant for the person)."""
    return DomainProblem(exc) if isinstance(exc, ProblemError) else exc


def _detail_and_errors(data):
    if isinstance(data, dict) and set(data) == {"detail"}:
        return data["detail"], None
    if isinstance(data, list):
        return " ".join(map(str, data)), None
    if isinstance(data, dict):  # field errors: the first message as the detail, all of them under "errors"
        errors = _flat_errors(data)
        first = next(iter(errors.values()), [""])
        return first[0], errors
    return data, None


def _flat_errors(data, prefix=""):
    """{field: [messages]} from DRF's field errors, where a list's or a nested object's errors come as nested
    dictionaries or lists: their fields are named by path ("chapters.5", "options.2.text")."""
    errors = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            errors.update(_flat_errors(value, f"{name}."))
        elif isinstance(value, list) and any(isinstance(item, dict) for item in value):
            for index, item in enumerate(value):
                if isinstance(item, dict) and item:
                    errors.update(_flat_errors(item, f"{name}.{index}."))
                elif item and not isinstance(item, dict):
                    errors.setdefault(name, []).append(str(item))
        else:
            errors[name] = [str(message) for message in value] if isinstance(value, list) else [str(value)]
    return errors


def problem_exception_handler(exc, context):
    """DRF's exception handler, answering with problem details (application/problem+json); an unexpected error is
    logged with its traceback and answered as a 500 problem."""
    from rest_framework.views import (  # not at import: DRF's views import this module
        exception_handler,
        set_rollback,
    )

    request = context.get("request")
    exc = _domain_error(exc)
    response = exception_handler(exc, context)
    if response is None:
        log.exception("API: %s %s failed", getattr(request, "method", ""), getattr(request, "path", ""), exc_info=exc)
        set_rollback()
        response = Response(status=500)
        detail, errors, code = _("Something went wrong on the server. Please try again."), None, "error"
    else:
        detail, errors = _detail_and_errors(response.data)
        code = exc.get_codes() if isinstance(exc, exceptions.APIException) else ""
        code = code if isinstance(code, str) else ""
    response.data = problem(response.status_code, detail, code=code, errors=errors,
                            instance=getattr(request, "path", ""))
    response.content_type = PROBLEM
    return response


# --- Lists, rate limits, content types -------------------------------------------------------------------

class Pagination(pagination.PageNumberPagination):
    """Pages of 50 items (``?page=``, ``?page_size=`` up to 200), with count and next/previous links."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


def bearer_secret(header):
    """The secret of an ``Authorization: Bearer <secret>`` header (the scheme in any case; '' when none follows),
    None for another scheme or no header: the one reading of the header, for the token chain
    (config.asgi.token_request) and the token's authentication (courses.access.ApiTokenAuthentication)."""
    scheme, _sep, secret = header.partition(" ")
    return secret.strip() if scheme.lower() == "bearer" else None


class TokenRateThrottle(throttling.SimpleRateThrottle):
    """At most API_RATE_LIMIT requests per API token (per person for sessions, per address
    otherwise); over it, 429 with Retry-After. DRF's throttle, counted by the tool's one rate limiter
    (config.ratelimit: a sliding window in one Redis round trip, shared with the chat's question limit)."""

    scope = "api"

    def get_rate(self):
        return settings.API_RATE_LIMIT

    def allow_request(self, request, view):
        """Whether this request is under the limit (and counted); DRF answers 429 with wait() otherwise."""
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        counted = getattr(request, "rate_counted", None)  # by begin(), while the token was read
        if counted is not None and counted[0] == key:
            allowed, self.retry_after = counted[1]
        else:
            allowed, self.retry_after = ratelimit.hit(key, self.num_requests, self.duration)
        return allowed

    @classmethod
    def begin(cls, request, ident):
        """Start counting an API token's request (ident: its rate_key) while the token is read from the database;
        ``end()`` of what it returns reads the count, which allow_request then uses. None where the request's view
        is not limited by this class. The request counts under its token's key before the token is found valid
        (an unknown token's requests count under a key of their own) and before the course's permission."""
        view = (getattr(request, "parser_context", None) or {}).get("view")
        if view is None or cls not in view.throttle_classes:
            return None
        throttle = cls()
        key = throttle.cache_format % {"scope": throttle.scope, "ident": ident}
        answer = ratelimit.begin(key, throttle.num_requests, throttle.duration)

        def end():
            request.rate_counted = (key, answer())

        return end

    def wait(self):
        """Seconds until the oldest counted request leaves the window."""
        return self.retry_after

    def get_cache_key(self, request, view):
        if getattr(request.auth, "rate_key", None):  # an API token (courses.models.ApiToken)
            ident = request.auth.rate_key
        elif request.user and request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            ident = f"address-{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class EventStreamRenderer(renderers.BaseRenderer):
    """Lets a client that accepts only text/event-stream reach the SSE endpoints (their events are written by
    event_stream_view); what DRF itself renders for such a client, an error, is JSON."""

    media_type = "text/event-stream"
    format = "sse"
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return json.dumps(data).encode() if data is not None else b""


# --- Updates: ETag and If-Match ----------------------------------------------------------------------------

def etag_of(representation):
    """The ETag of a resource: a hash of its API representation, so any change of what a client sees changes it."""
    text = json.dumps(representation, sort_keys=True, default=str, ensure_ascii=False)
    return '"' + hashlib.sha256(text.encode()).hexdigest()[:32] + '"'


def check_if_match(request, representation):
    """Refuse (412) an update whose If-Match header names another version than the current one (None or '*': no
    condition). Call it with the row locked (select_for_update), so nobody changes it between check and update."""
    header = request.headers.get("If-Match")
    if not header or header.strip() == "*":
        return
    wanted = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    if etag_of(representation) not in wanted:
        raise PreconditionFailed()


def with_etag(response, version=None):
    """The response with the ETag of the representation it carries (or of version, what stands for the resource's
    version where the representation also holds what changes by itself, e.g. indexing progress)."""
    response["ETag"] = etag_of(response.data if version is None else version)
    return response


# --- Async endpoints that stream -------------------------------------------------------------------------------

def event_stream_view(view_class, streamed):
    """An async endpoint: ``view_class`` (a DRF APIView: authentication, permission, rate limit, input, its entry
    in the schema) does the request's database work on the shared thread pool, in one hop; then
    ``streamed(request, response, **kwargs)`` may answer its success with a stream of server-sent events instead
    (a response), or return None to send it as it is. DRF's views are sync, and a thread per open stream would not
    hold hundreds of chats: this keeps the API's chat in the shape of the chat page's async views."""
    sync_view = view_class.as_view()

    @csrf_exempt
    async def view(request, **kwargs):
        response = await db_in_thread(lambda: sync_view(request, **kwargs).render())
        if response.status_code >= 300:
            return response
        return streamed(request, response, **kwargs) or response

    functools.update_wrapper(view, sync_view, assigned=("__name__", "__qualname__", "__module__"))
    view.cls, view.initkwargs = view_class, {}  # DRF's marks of a view: the schema generator documents view_class
    return view
