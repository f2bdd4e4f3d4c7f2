"""ASGI entry point: the web app runs under uvicorn so chat answers can stream."""

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor

import django
from asgiref.sync import ThreadSensitiveContext, iscoroutinefunction, sync_to_async
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

    async def handle(self, scope, receive, send):
        """Django's ASGIHandler.handle; for a sync view the signal, the request and the response in one hand-over."""
        prefix = asgi.get_script_prefix(scope)
        if not self.sync_view(scope["path"].removeprefix(prefix) if prefix else scope["path"]):
            return await super().handle(scope, receive, send)
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
            response = self.sync_handler.get_response(request)
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
        """Whether the path resolves to a sync view (Django's own test of a view, iscoroutinefunction)."""
        try:
            match = get_resolver().resolve(path_info or "/")
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
