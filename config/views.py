"""The tool's front page (what it is, what an LMS administrator pastes into Moodle), its static files, and the
Prometheus metrics of the installation."""

import mimetypes
import os

from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.exceptions import SuspiciousFileOperation
from django.http import Http404, HttpResponse, HttpResponseForbidden, HttpResponseNotModified
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import http_date
from django.views.decorators.http import require_GET
from django.views.static import was_modified_since

from config import metrics as installation_metrics


@require_GET
def index(request):
    """The URLs an LMS admin needs, and the test platform link when it is on."""
    base = settings.PUBLIC_URL
    endpoints = {
        "login": base + reverse("lti:login"),
        "launch": base + reverse("lti:launch"),
        "deep_link": base + reverse("lti:deep-link"),
        "jwks": base + reverse("lti:jwks"),
    }
    return render(request, "index.html", {"endpoints": endpoints, "test_platform": settings.LTI_TEST_PLATFORM})


@require_GET
def processing_record(request):
    """The processing record (docs/processing-record.md: what is stored, why, how long, who sees it), as the
    AI-use notice links it; public, like the privacy notice of any service."""
    path = settings.BASE_DIR / "docs" / "processing-record.md"
    response = HttpResponse(path.read_text(encoding="utf-8"), content_type="text/plain; charset=utf-8")
    response["Cache-Control"] = "public, max-age=3600"
    return response


STATIC_MAX_AGE = 3600


@require_GET
async def static_file(request, path):
    """A static file (CSS, JavaScript) from the apps' static folders, under the ASGI server itself: async, no
    thread per request. Behind nginx in production, nginx serves STATIC_ROOT (collectstatic) instead."""
    try:
        found = finders.find(path)
    except SuspiciousFileOperation:  # a path out of the static folders (safe_join)
        raise Http404(path) from None
    if not found or not os.path.isfile(found):
        raise Http404(path)
    modified = os.stat(found).st_mtime
    if not was_modified_since(request.headers.get("If-Modified-Since"), modified):
        return HttpResponseNotModified()
    with open(found, "rb") as file:  # small files from the page cache
        content = file.read()
    content_type, encoding = mimetypes.guess_type(found)
    response = HttpResponse(content, content_type=content_type or "application/octet-stream")
    response["Last-Modified"] = http_date(modified)
    response["Cache-Control"] = f"public, max-age={STATIC_MAX_AGE}"
    if encoding:
        response["Content-Encoding"] = encoding
    return response


@require_GET
def metrics(request):
    """The installation's metrics for Prometheus (config.metrics): only for METRICS_TOKEN or a direct request
    from METRICS_ALLOWED_IPS, never for a request through the reverse proxy without the token."""
    if not installation_metrics.allowed(request):
        return HttpResponseForbidden("metrics: not from this address (see METRICS_ALLOWED_IPS, METRICS_TOKEN)\n",
                                     content_type="text/plain")
    body, content_type = installation_metrics.exposition(request.headers.get("Accept", ""))
    response = HttpResponse(body, content_type=content_type)
    response["Cache-Control"] = "no-store"
    return response
