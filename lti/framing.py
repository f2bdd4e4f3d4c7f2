"""Who may show the tool in a frame: the registered LMS platforms, and nobody else.

Moodle shows LTI tools in an iframe. Django's X-Frame-Options can only say DENY or SAMEORIGIN, so
this middleware replaces it with ``Content-Security-Policy: frame-ancestors`` listing the origins of
the active platform registrations (the admin site is never framed).
"""

import time
from urllib.parse import urlparse

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.core.cache import cache
from django.db.models.signals import post_delete, post_save

from config.threads import db_in_thread

CACHE_KEY = "lti.frame-ancestors"
CACHE_SECONDS = 60
LOCAL_SECONDS = 5  # each process also keeps the list this long: no Redis round trip on every response
_local = {"until": 0.0, "origins": None}


def _origin(url):
    parsed = urlparse(url or "")
    if parsed.scheme in {"http", "https"} and parsed.netloc:
        return f"{parsed.scheme}://{parsed.netloc}"
    return None


def _local_origins():
    return _local["origins"] if _local["until"] > time.monotonic() else None


def platform_origins():
    """Origins of the active platforms (issuer and login URL hosts), cached for a minute (in Redis, for
    every process) and a few seconds in this process."""
    local = _local_origins()
    if local is not None:
        return local
    origins = cache.get(CACHE_KEY)
    if origins is None:
        from lti.models import Registration

        found = set()
        for issuer, login in Registration.objects.filter(status=Registration.ACTIVE).values_list(
                "issuer", "auth_login_url"):
            found.update(origin for origin in (_origin(issuer), _origin(login)) if origin)
        origins = sorted(found)
        cache.set(CACHE_KEY, origins, CACHE_SECONDS)
    _local.update(until=time.monotonic() + LOCAL_SECONDS, origins=origins)
    return origins


class FrameAncestorsMiddleware:
    """Sets frame-ancestors on every response that does not set its own; admin pages: 'none'.

    Sync and async: under the ASGI server a sync-only middleware would push every request, streams
    included, through one shared thread.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.is_async:
            return self._acall(request)
        response = self.get_response(request)
        if self._needs_policy(response):
            self._frame(request, response, [] if request.path.startswith("/admin/") else platform_origins())
        return response

    async def _acall(self, request):
        response = await self.get_response(request)
        if self._needs_policy(response):
            origins = [] if request.path.startswith("/admin/") else _local_origins()
            if origins is None:
                origins = await db_in_thread(platform_origins)
            self._frame(request, response, origins)
        return response

    @staticmethod
    def _needs_policy(response):
        return "Content-Security-Policy" not in response

    @staticmethod
    def _frame(request, response, origins):
        if request.path.startswith("/admin/"):
            response["Content-Security-Policy"] = "frame-ancestors 'none'"
            response["X-Frame-Options"] = "DENY"
        else:
            response["Content-Security-Policy"] = "frame-ancestors " + " ".join(["'self'", *origins])


def forget_platform_origins(**kwargs):
    """Drop the cached origins when a registration changes (other processes follow within LOCAL_SECONDS)."""
    _local.update(until=0.0, origins=None)
    cache.delete(CACHE_KEY)


post_save.connect(forget_platform_origins, sender="lti.Registration", dispatch_uid="lti-framing-save")
post_delete.connect(forget_platform_origins, sender="lti.Registration", dispatch_uid="lti-framing-delete")
