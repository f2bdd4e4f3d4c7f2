"""Who may show the tool in a frame: the registered LMS platforms, and nobody else (their origins go into the
Content-Security-Policy's frame-ancestors, see config.csp)."""

import time
from urllib.parse import urlparse

from django.core.cache import cache
from django.db.models.signals import post_delete, post_save

CACHE_KEY = "lti.frame-ancestors"
CACHE_SECONDS = 60
LOCAL_SECONDS = 5  # each process also keeps the list this long: no Redis round trip on every response
_local = {"until": 0.0, "origins": None}


def _origin(url):
    parsed = urlparse(url or "")
    if parsed.scheme in {"http", "https"} and parsed.netloc:
        return f"{parsed.scheme}://{parsed.netloc}"
    return None


def cached_platform_origins():
    """The origins this process read a few seconds ago, or None (then platform_origins() reads them)."""
    return _local["origins"] if _local["until"] > time.monotonic() else None


def platform_origins():
    """Origins of the active platforms (issuer and login URL hosts), cached for a minute (in Redis, for
    every process) and a few seconds in this process."""
    local = cached_platform_origins()
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


def forget_platform_origins(**kwargs):
    """Drop the cached origins when a registration changes (other processes follow within LOCAL_SECONDS)."""
    _local.update(until=0.0, origins=None)
    cache.delete(CACHE_KEY)


post_save.connect(forget_platform_origins, sender="lti.Registration", dispatch_uid="lti-framing-save")
post_delete.connect(forget_platform_origins, sender="lti.Registration", dispatch_uid="lti-framing-delete")
