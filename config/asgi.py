"""ASGI entry point: the web app runs under uvicorn so chat answers can stream."""

import os

from django.core.asgi import get_asgi_application
from django.urls import get_resolver

from config.heap import freeze_startup_objects

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_asgi_application()
get_resolver().url_patterns  # noqa: B018 (imports every view now, not on the first request)
freeze_startup_objects("web")
