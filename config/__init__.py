"""The Django project package: settings, URLs, the ASGI app and the Celery app."""

from .celery import app as celery_app

__all__ = ["celery_app"]
