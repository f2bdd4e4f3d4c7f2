"""The DB-backed pylti1p3 ToolConf and the outbound-HTTP guard (only registered platform hosts)."""

import logging

import pytest
import requests

from lti.models import Deployment, Registration
from lti.tool import DatabaseToolConf, PlatformOnlySession, allowed_hosts

pytestmark = pytest.mark.django_db


@pytest.fixture
def registration():
    reg = Registration.objects.create(issuer="https://moodle.example.edu", client_id="AbCdEfGhIjKlMnO",
                                      auth_login_url="https://moodle.example.edu/mod/lti/auth.php",
                                      auth_token_url="https://moodle.example.edu/mod/lti/token.php",
                                      key_set_url="https://moodle.example.edu/mod/lti/certs.php")
    Deployment.objects.create(registration=reg, deployment_id="3")
    return reg


def test_tool_conf_finds_active_registrations_and_known_deployments(registration):
    conf = DatabaseToolConf()
    found = conf.find_registration_by_params("https://moodle.example.edu", "AbCdEfGhIjKlMnO")
    assert found.get_auth_token_url() == "https://moodle.example.edu/mod/lti/token.php"
    assert found.get_kid() and "PRIVATE KEY" in found.get_tool_private_key()
    assert conf.find_deployment_by_params("https://moodle.example.edu", "3", "AbCdEfGhIjKlMnO") is not None
    assert conf.find_deployment_by_params("https://moodle.example.edu", "4", "AbCdEfGhIjKlMnO") is None
    assert DatabaseToolConf().find_registration_by_params("https://moodle.example.edu", "other") is None
    registration.status = Registration.PENDING
    registration.save()
    assert DatabaseToolConf().find_registration_by_params("https://moodle.example.edu", "AbCdEfGhIjKlMnO") is None


def test_outbound_requests_only_reach_registered_platform_hosts(registration, caplog):
    assert allowed_hosts() == {"moodle.example.edu"}
    with caplog.at_level(logging.WARNING), pytest.raises(requests.exceptions.InvalidURL):
        PlatformOnlySession().get("http://127.0.0.1:9/anything")
    assert "refused outbound request to unregistered host 127.0.0.1" in caplog.text


def test_admin_registers_a_platform_by_hand(admin_client, registration):
    page = admin_client.get("/admin/lti/registration/add/")
    assert page.status_code == 200 and "key_set_url" in page.content.decode()
    listing = admin_client.get("/admin/lti/registration/")
    assert "moodle.example.edu" in listing.content.decode()


@pytest.mark.django_db(transaction=True)
def test_a_platform_cannot_redirect_the_tool_to_another_host(lti_platform, caplog):
    """Redirects are checked hop by hop: within the registered host they are followed, elsewhere refused."""
    from tests.lti_support import FakeLMS

    elsewhere = FakeLMS("http://localhost:9")  # not registered: its host must never be contacted
    try:
        lti_platform.redirects["/keys-moved"] = lti_platform.base + "/jwks"
        assert PlatformOnlySession().get(lti_platform.base + "/keys-moved").json()["keys"]

        lti_platform.redirects["/jwks-elsewhere"] = elsewhere.base.replace("127.0.0.1", "localhost") + "/jwks"
        with caplog.at_level(logging.WARNING), pytest.raises(requests.exceptions.InvalidURL):
            PlatformOnlySession().get(lti_platform.base + "/jwks-elsewhere")
        assert "refused outbound request to unregistered host localhost" in caplog.text
        assert elsewhere.requests == []
    finally:
        elsewhere.close()
