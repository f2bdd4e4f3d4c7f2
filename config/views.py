"""The tool's front page: what it is, and what an LMS administrator pastes into Moodle."""

from django.conf import settings
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET


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
