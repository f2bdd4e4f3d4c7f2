"""ASGI entry point: the web app runs under uvicorn so chat answers can stream.

Django's ASGI handler with three changes (ASGIHandler): each request's thread is reused, a sync view's request runs
on it in one hand-over, and an API request with a bearer token goes through a second middleware chain built at
start-up, settings.MIDDLEWARE less settings.API_TOKEN_SKIPS_MIDDLEWARE (no session, CSRF or flash messages: DRF's
token authentication never asks them); every other request, and every async view's, takes settings.MIDDLEWARE.
"""

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from importlib import import_module

import django
from asgiref.sync import ThreadSensitiveContext, iscoroutinefunction, sync_to_async
from django.conf import settings
from django.contrib.messages.storage.base import BaseStorage
from django.core import signals
from django.core.handlers import asgi
from django.core.handlers.base import BaseHandler
from django.http import FileResponse
from django.urls import Resolver404, get_resolver, set_script_prefix

from config.heap import freeze_startup_objects

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

IDLE_REQUEST_THREADS = 32  # request threads kept for reuse; more at once are started and ended as Django does


class ASGIHandler(asgi.ASGIHandler):
    """Django's ASGI handler, its requests' threads reused, and a sync view's request in one hand-over.

    Django runs a request's sync parts (signals, a sync view, Django's own middleware) on a thread of that request
    (asgiref's ThreadSensitiveContext): started for every request, and joined by a second thread started after it,
    which cost ~0.3 ms a request on a quiet 2-core machine and up to 3 ms at its p95 under load. Here each request
    still has a thread to itself while it runs (a single-thread executor, asgiref's ThreadSensitiveContext
    with an executor), taken from the idle ones of earlier requests, as WSGI servers reuse their threads; Django's
    request_finished signal gives the request's database connection back to the pool as before.

    A request for a sync view (DRF's API views, the pages) goes as under WSGI: the request_started signal, the
    middleware, the view and its rendering run on that thread in one hand-over. Django's async path hands such a
    request over four times (the signal; the view; its response's rendering; then response.close), each a wake-up
    of a thread and of the event loop, ~0.2 ms on a quiet 2-core machine and 1-9 ms at its p95 under load. The
    middleware is the same (settings.MIDDLEWARE, loaded for sync calls as WSGIHandler loads it), and so is what it
    does; async views (the answer streams, static files) and paths no view matches keep Django's async path.
    Sending the response, watching for the client's disconnect and response.close (request_finished) are Django's.
    The view resolved to choose the path is the one the request uses (Django's handler would resolve it again).

    An API request with a token (``Authorization: Bearer …``, a path under /api/, a view exempt from CSRF: DRF's)
    goes through a second middleware chain, built here once at start-up: settings.MIDDLEWARE less
    settings.API_TOKEN_SKIPS_MIDDLEWARE (the session, CSRF, the session's user and the flash messages). DRF's token
    authentication decides who such a request is and never asks the session, so that work was wasted (~0.35 ms of
    a 2-core machine); the metrics, the security headers, the language and the CSP run as for every request. Its
    request gets an empty session that is never saved, an anonymous user until DRF authenticates it and a message
    store that keeps nothing, so code that looks at them finds nothing instead of failing. A request without a
    bearer token (the pages, their own calls to the API with the session, DRF's session authentication with its
    CSRF check) takes the whole chain, as does a bearer request to any other path.
    """

    def __init__(self):
        super().__init__()
        self.idle = []  # single-thread executors of finished requests (used from the event loop only)
        self.sync_handler = SyncHandler(settings.MIDDLEWARE)  # for sync calls (as WSGIHandler loads it)
        self.token_handler = SyncHandler(token_middleware())  # API requests with a bearer token
        self.token_stand_ins = token_stand_ins()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await super().__call__(scope, receive, send)  # Django's own refusal
        executor = self.idle.pop() if self.idle else ThreadPoolExecutor(max_workers=1, thread_name_prefix="request")
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            if len(self.idle) < IDLE_REQUEST_THREADS:
                self.idle.append(executor)
            else:
                executor.shutdown(wait=False)

    async def handle(self, scope, receive, send):
        """Django's ASGIHandler.handle; for a sync view the signal, the request and the response in one hand-over."""
        prefix = asgi.get_script_prefix(scope)
        path_info = (scope["path"].removeprefix(prefix) if prefix else scope["path"]) or "/"
        match = self.sync_view(path_info)
        if match is None:
            return await super().handle(scope, receive, send)
        token = token_request(scope, path_info, match)
        handler = self.token_handler if token else self.sync_handler
        try:
            body_file = await self.read_body(receive)
        except asgi.RequestAborted:
            return
        set_script_prefix(prefix)

        def respond():  # on the request's thread, as WSGIHandler.__call__ does it
            signals.request_started.send(sender=self.__class__, scope=scope)
            request, error_response = self.create_request(scope, body_file)
            if request is None:
                return error_response
            request._resolved = (path_info, match)
            if token:
                self.token_stand_ins(request)
            response = handler.get_response(request)
            response._handler_class = self.__class__
            if isinstance(response, FileResponse):  # as Django's run_get_response: ASGI servers chunk it
                response.block_size = self.chunk_size
            return response

        async def process_request():
            response = await sync_to_async(respond, thread_sensitive=True)()
            try:
                await self.send_response(response, send)
            except asyncio.CancelledError:
                pass  # the client disconnected while it was sent
            return response

        await self.answer(process_request(), receive, body_file)

    async def answer(self, process_request, receive, body_file):
        """Django's end of handle(): run process_request while watching for the client's disconnect (which
        cancels it), then close the response (request_finished) and the body."""
        tasks = [asyncio.create_task(self.listen_for_disconnect(receive)), asyncio.create_task(process_request)]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done():
                try:
                    task.result()
                except asgi.RequestAborted:
                    pass
                except AssertionError:
                    body_file.close()
                    raise
            else:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        try:
            response = tasks[1].result()
        except asyncio.CancelledError:
            await signals.request_finished.asend(sender=self.__class__)
        else:
            await sync_to_async(response.close)()
        body_file.close()

    def sync_view(self, path_info):
        """The path's ResolverMatch where it resolves to a sync view (Django's own test, iscoroutinefunction),
        else None."""
        try:
            match = get_resolver().resolve(path_info or "/")
        except Resolver404:
            return None
        return None if iscoroutinefunction(match.func) else match


class SyncHandler(BaseHandler):
    """Django's handler of sync requests with this middleware (loaded as WSGIHandler loads settings.MIDDLEWARE);
    a request whose view ASGIHandler.handle resolved already (``request._resolved``) is not resolved again."""

    def __init__(self, middleware):
        from django.test.utils import override_settings  # only while the chains are loaded, at start-up

        super().__init__()
        with override_settings(MIDDLEWARE=list(middleware)):  # what load_middleware reads
            self.load_middleware(is_async=False)

    def resolve_request(self, request):
        path_info, match = getattr(request, "_resolved", (None, None))
        if match is None or path_info != request.path_info or hasattr(request, "urlconf"):
            return super().resolve_request(request)  # middleware changed the path or the URLconf: Django's way
        request.resolver_match = match
        return match


def token_middleware():
    """settings.MIDDLEWARE less settings.API_TOKEN_SKIPS_MIDDLEWARE, in its order."""
    return [path for path in settings.MIDDLEWARE if path not in settings.API_TOKEN_SKIPS_MIDDLEWARE]


def token_request(scope, path_info, match):
    """Whether a sync view's request takes the token chain: under /api/, to a view exempt from CSRF (DRF's), and its
    Authorization header names the Bearer scheme (as courses.access.ApiTokenAuthentication reads it: the first
    header's scheme, in any case). Such a request is authenticated by its token or refused; no session is asked."""
    from config.api import bearer_secret  # DRF, loaded by the first request

    if not path_info.startswith("/api/") or not getattr(match.func, "csrf_exempt", False):
        return False
    for name, value in scope["headers"]:
        if name == b"authorization":
            return bearer_secret(value.decode("latin-1")) is not None
    return False


def token_stand_ins():
    """A function that gives a request of the token chain what the middleware it skips would: an empty session
    (settings.SESSION_ENGINE's, without a key: never loaded, and never saved), an anonymous user (until DRF
    authenticates the token) and a message store that keeps nothing."""
    from django.contrib.auth.models import AnonymousUser  # the apps are loaded by now

    session_store = import_module(settings.SESSION_ENGINE).SessionStore

    def stand_ins(request):
        request.session, request.session_via = session_store(), ""
        request.user, request._messages = AnonymousUser(), NoMessages(request)

    return stand_ins


class NoMessages(BaseStorage):
    """The flash messages of a request with a token: none to read, and what is added is not kept."""

    def _get(self, *args, **kwargs):
        return [], True

    def _store(self, messages, response, *args, **kwargs):
        return []


def get_asgi_application():
    """Django set up, and its ASGI application (django.core.asgi.get_asgi_application, with the handler above)."""
    django.setup(set_prefix=False)
    return ASGIHandler()


application = get_asgi_application()
get_resolver().url_patterns  # noqa: B018 (imports every view now, not on the first request)
freeze_startup_objects("web")
