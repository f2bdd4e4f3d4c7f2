"""Who may show the tool in a frame: the registered LMS platforms, and nobody else.

Moodle shows LTI tools in an iframe. Django's X-Frame-Options can only say DENY or SAMEORIGIN, so
this middleware replaces it with ``Content-Security-Policy: frame-ancestors`` listing the origins of
the active platform registrations (the admin site is never framed).
"""

from urllib.parse import urlparse

from django.core.cache import cache
from django.db.models.signals import post_delete, post_save

CACHE_KEY = "lti.frame-ancestors"
CACHE_SECONDS = 60


def _origin(url):
    parsed = urlparse(url or "")
    if parsed.scheme in {"http", "https"} and parsed.netloc:
        return f"{parsed.scheme}://{parsed.netloc}"
    return None


def platform_origins():
    """Origins of the active platforms (issuer and login URL hosts), cached for a minute."""
    origins = cache.get(CACHE_KEY)
    if origins is None:
        from lti.models import Registration

        found = set()
        for issuer, login in Registration.objects.filter(status=Registration.ACTIVE).values_list(
                "issuer", "auth_login_url"):
            found.update(origin for origin in (_origin(issuer), _origin(login)) if origin)
        origins = sorted(found)
        cache.set(CACHE_KEY, origins, CACHE_SECONDS)
    return origins


class FrameAncestorsMiddleware:
    """Sets frame-ancestors on every response that does not set its own; admin pages: 'none'."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if "Content-Security-Policy" in response:
            return response
        if request.path.startswith("/admin/"):
            response["Content-Security-Policy"] = "frame-ancestors 'none'"
            response["X-Frame-Options"] = "DENY"
        else:
            response["Content-Security-Policy"] = "frame-ancestors " + " ".join(["'self'", *platform_origins()])
        return response


def forget_platform_origins(**kwargs):
    """Drop the cached origins when a registration changes."""
    cache.delete(CACHE_KEY)


post_save.connect(forget_platform_origins, sender="lti.Registration", dispatch_uid="lti-framing-save")
post_delete.connect(forget_platform_origins, sender="lti.Registration", dispatch_uid="lti-framing-delete")
