"""ASGI entry point: the web app runs under uvicorn so chat answers can stream."""

import os
from concurrent.futures import ThreadPoolExecutor

import django
from asgiref.sync import ThreadSensitiveContext
from django.core.handlers import asgi
from django.urls import get_resolver

from config.heap import freeze_startup_objects

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

IDLE_REQUEST_THREADS = 32  # request threads kept for reuse; more at once are started and ended as Django does


class ASGIHandler(asgi.ASGIHandler):
    """Django's ASGI handler, its requests' threads reused.

    Django runs a request's sync parts (signals, a sync view, Django's own middleware) on a thread of that request
    (asgiref's ThreadSensitiveContext): started for every request, and joined by a second thread started after it,
    which cost ~0.3 ms a request on a quiet 2-core machine and up to 3 ms at its p95 under load. Here each request
    still has a thread to itself while it runs (a single-thread executor, asgiref's ThreadSensitiveContext
    with an executor), taken from the idle ones of earlier requests, as WSGI servers reuse their threads; Django's
    request_finished signal gives the request's database connection back to the pool as before.
    """

    def __init__(self):
        super().__init__()
        self.idle = []  # single-thread executors of finished requests (used from the event loop only)

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


def get_asgi_application():
    """Django set up, and its ASGI application (django.core.asgi.get_asgi_application, with the handler above)."""
    django.setup(set_prefix=False)
    return ASGIHandler()


application = get_asgi_application()
get_resolver().url_patterns  # noqa: B018 (imports every view now, not on the first request)
freeze_startup_objects("web")
