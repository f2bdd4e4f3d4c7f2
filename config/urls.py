"""Top-level URLs: each app mounts its own; the API at /api/v1/ (config/api_urls.py); health checks at /health/;
Prometheus metrics at /metrics; static files at STATIC_URL."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from django.views.i18n import set_language

from config import health, views

urlpatterns = [
    path("", views.index, name="index"),
    re_path(r"^" + settings.STATIC_URL.strip("/") + r"/(?P<path>.+)$", views.static_file, name="static"),
    path("health/live", health.live, name="health-live"),
    path("health/ready", health.ready, name="health-ready"),
    path("metrics", views.metrics, name="metrics"),
    path("privacy/processing-record", views.processing_record, name="processing-record"),
    # the language menu of every page, signed in or not: no CSRF token, which would open a session for every visitor
    # (CSRF_USE_SESSIONS); a forged post can only change the visitor's language
    path("i18n/setlang/", csrf_exempt(set_language), name="set_language"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("config.api_urls")),
    path("lti/", include("lti.urls")),
    path("courses/", include("courses.urls")),
    path("", include("tutor.urls")),
]
