"""ASGI entry point: the web app runs under uvicorn so chat answers can stream."""

import os
from concurrent.futures import ThreadPoolExecutor

import django
from asgiref.sync import ThreadSensitiveContext, iscoroutinefunction, sync_to_async
from django.core.handlers import asgi
from django.core.handlers.base import BaseHandler
from django.urls import Resolver404, get_resolver, get_urlconf

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

    A request for a sync view (DRF's API views, the pages) goes through the middleware and the view as under WSGI,
    on that thread in one hand-over: Django's async path hands it over three times (the view, then back to the event
    loop, then its response's rendering, then back), each a wake-up of a thread and of the loop, ~1-3 ms a request
    on a busy 2-core machine. The middleware is the same (settings.MIDDLEWARE, loaded for sync calls as
    WSGIHandler loads it), so is what it does; async views (the answer streams, static files) keep Django's async
    path. Django's request signals and response.close stay where Django's handler runs them.
    """

    def __init__(self):
        super().__init__()
        self.idle = []  # single-thread executors of finished requests (used from the event loop only)
        self.sync_handler = BaseHandler()  # the same middleware, for sync calls (as WSGIHandler loads it)
        self.sync_handler.load_middleware(is_async=False)

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

    async def get_response_async(self, request):
        """The response: a sync view's request through the sync middleware on the request's thread in one
        hand-over; any other (an async view, a path no view matches) through Django's async path."""
        if self.sync_view(request):
            return await sync_to_async(self.sync_handler.get_response, thread_sensitive=True)(request)
        return await super().get_response_async(request)

    def sync_view(self, request):
        """Whether the request's path resolves to a sync view (Django's own test of a view, iscoroutinefunction)."""
        try:
            match = get_resolver(get_urlconf()).resolve(request.path_info)
        except Resolver404:
            return False
        return not iscoroutinefunction(match.func)


def get_asgi_application():
    """Django set up, and its ASGI application (django.core.asgi.get_asgi_application, with the handler above)."""
    django.setup(set_prefix=False)
    return ASGIHandler()


application = get_asgi_application()
get_resolver().url_patterns  # noqa: B018 (imports every view now, not on the first request)
freeze_startup_objects("web")
