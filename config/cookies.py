"""Cookies that work inside an LMS iframe: ``Partitioned; Secure; SameSite=None`` (CHIPS), where the browser keeps a
third-party cookie only in the partition of the site that frames the tool.

Django 5.2's set_cookie has no ``partitioned`` argument and Python 3.11's Morsel knows no such attribute, so the
attribute is written after SameSite, the last one Django sets: ``SameSite=None; Partitioned``. Python 3.14's Morsel
has a ``partitioned`` flag, which is used where it exists (see docs/upgrade.md).
"""

from http.cookies import CookieError

from django.conf import settings


def partition(response, name):
    """Mark the response's cookie `name` (if it sets one) Partitioned, Secure and SameSite=None, where
    settings.SESSION_COOKIE_PARTITIONED; otherwise leave it as Django set it."""
    morsel = response.cookies.get(name)
    if morsel is None or not settings.SESSION_COOKIE_PARTITIONED:
        return
    morsel["secure"] = True
    try:
        morsel["partitioned"] = True
        morsel["samesite"] = "None"
    except CookieError:
        morsel["samesite"] = "None; Partitioned"
