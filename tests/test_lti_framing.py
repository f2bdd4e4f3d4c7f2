"""Only the registered LMS platforms may show the tool in a frame."""

import pytest

from lti.models import Registration

pytestmark = pytest.mark.django_db


def frame_ancestors(response):
    """The frame-ancestors directive of the response's Content-Security-Policy."""
    return next(d.strip() for d in response["Content-Security-Policy"].split(";") if "frame-ancestors" in d)


def test_registered_platform_may_frame_the_tool(client):
    Registration.objects.create(name="Moodle", issuer="https://moodle.example.edu", client_id="abc",
                                auth_login_url="https://moodle.example.edu/mod/lti/auth.php",
                                key_set_url="https://moodle.example.edu/mod/lti/certs.php")
    response = client.get("/health/live")
    assert frame_ancestors(response) == "frame-ancestors 'self' https://moodle.example.edu"
    assert "X-Frame-Options" not in response


def test_pending_platform_may_not_frame_the_tool(client):
    Registration.objects.create(name="New", issuer="https://other.example.org", client_id="x",
                                auth_login_url="https://other.example.org/auth", status=Registration.PENDING,
                                key_set_url="https://other.example.org/jwks")
    assert frame_ancestors(client.get("/health/live")) == "frame-ancestors 'self'"


def test_admin_is_never_framed(client):
    response = client.get("/admin/login/")
    assert frame_ancestors(response) == "frame-ancestors 'none'"
    assert response["X-Frame-Options"] == "DENY"


@pytest.mark.django_db(transaction=True)  # the async path reads registrations on another thread's connection
def test_the_async_path_sets_the_same_policy():
    """Under ASGI the middleware runs async (no shared thread per request) and sets the same header."""
    import asyncio

    from django.test import AsyncClient

    from config.csp import ContentSecurityPolicyMiddleware

    Registration.objects.create(name="Moodle", issuer="https://moodle.example.edu", client_id="abc",
                                auth_login_url="https://moodle.example.edu/mod/lti/auth.php",
                                key_set_url="https://moodle.example.edu/mod/lti/certs.php")
    response = asyncio.run(AsyncClient().get("/health/live"))
    assert frame_ancestors(response) == "frame-ancestors 'self' https://moodle.example.edu"
    assert ContentSecurityPolicyMiddleware.async_capable
