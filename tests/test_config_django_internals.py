"""config/middleware.py replaces Django's internal ``MiddlewareMixin.__acall__`` (no public hook runs a
middleware's process_request/process_response on the event loop). Written for Django 5.2: this test fails on
another Django release, or when the method it replaces changes, so the override is checked before it silently
diverges (docs/upgrade.md, "Libraries' internals")."""

import inspect
from importlib.metadata import version

from django.conf import settings
from django.utils.deprecation import MiddlewareMixin
from django.utils.module_loading import import_string

DJANGO_WRITTEN_FOR = "5.2"
REPLACED = '''        response = None
        if hasattr(self, "process_request"):
            response = await sync_to_async(
                self.process_request,
                thread_sensitive=True,
            )(request)
        response = response or await self.get_response(request)
        if hasattr(self, "process_response"):
            response = await sync_to_async(
                self.process_response,
                thread_sensitive=True,
            )(request, response)
        return response
'''


def test_django_is_the_release_the_middleware_override_was_written_for():
    assert version("django").rsplit(".", 1)[0] == DJANGO_WRITTEN_FOR, (
        "Django changed: compare MiddlewareMixin.__acall__ with config.middleware.InlineHooks.__acall__, then set "
        "DJANGO_WRITTEN_FOR")


def test_the_replaced_method_is_still_the_one_the_override_copies():
    assert inspect.getsource(MiddlewareMixin.__acall__).endswith(REPLACED)
    assert "def __acall__(self, request)" in inspect.getsource(MiddlewareMixin)


def test_every_inline_middleware_uses_the_override():
    from config.middleware import InlineHooks

    inline = [import_string(path) for path in settings.MIDDLEWARE if path.startswith("config.middleware.")]
    classes = [found for found in inline if isinstance(found, type)]
    assert classes and all(issubclass(found, InlineHooks) and issubclass(found, MiddlewareMixin) for found in classes)
    assert all(found.__acall__ is InlineHooks.__acall__ for found in classes)
