"""The Content-Security-Policy of every response: scripts and styles only from the tool's own static files (no
inline script, no inline event handler, no inline style), and frames only by the registered LMS platforms.

Moodle shows LTI tools in an iframe; Django's X-Frame-Options can only say DENY or SAMEORIGIN, so the policy's
``frame-ancestors`` lists the origins the apps register (config.framing; lti: its active platform registrations)
instead; the admin site is never framed. Sync and async: under the ASGI server a sync-only middleware would push every request,
streams included, through one shared thread.
"""

from urllib.parse import urlparse

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings

from config.framing import cached_platform_origins, platform_origins
from config.threads import db_in_thread


def _origin(url):
    parsed = urlparse(url or "")
    return f"{parsed.scheme}://{parsed.netloc}" if parsed.scheme and parsed.netloc else ""


def page_policy():
    """Every directive but frame-ancestors. frame-src: the built-in test platform frames the tool, which may live
    at PUBLIC_URL beside it (LTI_TEST_PLATFORM_URL)."""
    frames = " ".join(sorted({"'self'", *filter(None, (_origin(settings.PUBLIC_URL),
                                                       _origin(settings.LTI_TEST_PLATFORM_URL)))}))
    return ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"connect-src 'self'; frame-src {frames}; object-src 'none'; base-uri 'self'")


class ContentSecurityPolicyMiddleware:
    """Sets the policy on every response that does not set its own; admin pages: frame-ancestors 'none'."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)
        self.policy = page_policy()

    def __call__(self, request):
        if self.is_async:
            return self._acall(request)
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            self._set(request, response, [] if _is_admin(request) else platform_origins())
        return response

    async def _acall(self, request):
        response = await self.get_response(request)
        if "Content-Security-Policy" not in response:
            origins = [] if _is_admin(request) else cached_platform_origins()
            if origins is None:
                origins = await db_in_thread(platform_origins)
            self._set(request, response, origins)
        return response

    def _set(self, request, response, origins):
        if _is_admin(request):
            response["Content-Security-Policy"] = f"{self.policy}; frame-ancestors 'none'"
            response["X-Frame-Options"] = "DENY"
        else:
            response["Content-Security-Policy"] = f"{self.policy}; frame-ancestors " + " ".join(["'self'", *origins])


def _is_admin(request):
    return request.path.startswith("/admin/")
