"""LTI Dynamic Registration as Moodle 5 does it, against the independent platform's registration endpoint."""

import logging
import re

import pytest

from lti.models import Deployment, Registration
from tests.lti_support import ROLE, FakeLMS, browser

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def lms(live_server):
    platform = FakeLMS(live_server.url)  # not registered in the tool: dynamic registration does it
    yield platform
    platform.close()


def _register(live_server, lms, token="reg-token-1"):
    return browser().get(live_server.url + "/lti/register/", params={
        "openid_configuration": lms.base + "/.well-known/openid-configuration", "registration_token": token})


def test_registration_sends_what_moodle_requires_and_closes_the_dialog(lms, live_server):
    page = _register(live_server, lms)

    assert page.status_code == 200, page.text
    script = re.search(r'<script type="module" src="([^"]+/registered.js)"', page.text)[1]
    assert "postMessage({subject: 'org.imsglobal.lti.close'}, '*')" in browser().get(live_server.url + script).text
    headers, sent = lms.registration_requests[0]
    assert headers["Authorization"] == "Bearer reg-token-1"
    assert "id_token" in sent["response_types"]
    assert sent["initiate_login_uri"] == live_server.url + "/lti/login"
    assert sent["redirect_uris"] == [live_server.url + "/lti/launch"]
    assert sent["client_name"] and sent["jwks_uri"] == live_server.url + "/lti/jwks"
    assert sent["token_endpoint_auth_method"] == "private_key_jwt"
    config = sent["https://purl.imsglobal.org/spec/lti-tool-configuration"]
    assert config["domain"] == live_server.url.split("://")[1] == config["target_link_uri"].split("/")[2]
    assert {"LtiDeepLinkingRequest"} == {m["type"] for m in config["messages"]}
    assert "https://purl.imsglobal.org/spec/lti-ags/scope/score" in sent["scope"].split()
    assert "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly" in sent["scope"].split()

    registration = Registration.objects.get()
    assert (registration.issuer, registration.client_id) == (lms.issuer, lms.client_id)
    assert registration.key_set_url == lms.base + "/jwks" and registration.auth_token_url == lms.base + "/token"
    assert Deployment.objects.get().deployment_id == lms.deployment_id
    assert registration.status == Registration.PENDING  # an admin activates platforms not listed as trusted
    assert "must activate" in page.text


def test_pending_platform_cannot_launch_until_activated(lms, live_server, settings, caplog):
    _register(live_server, lms)
    with caplog.at_level(logging.WARNING):
        refused = browser().get(live_server.url + "/lti/login", params={
            "iss": lms.issuer, "client_id": lms.client_id, "login_hint": "u", "target_link_uri": live_server.url})
    assert refused.status_code == 400 and "not registered" in refused.text

    Registration.objects.update(status=Registration.ACTIVE)  # the admin action "Activate"
    response = lms.launch(browser(), user_id="teacher", roles=[ROLE + "Instructor"])
    assert response.status_code == 302 and "/c/" in response.headers["Location"]


def test_trusted_platform_host_starts_active(lms, live_server, settings):
    settings.LTI_ALLOWED_PLATFORM_HOSTS = ["127.0.0.1"]
    assert _register(live_server, lms).status_code == 200
    assert Registration.objects.get().status == Registration.ACTIVE


def test_configuration_naming_another_host_is_refused(lms, live_server, caplog):
    lms.openid_configuration = lambda: {**FakeLMS.openid_configuration(lms), "issuer": "https://elsewhere.example"}
    with caplog.at_level(logging.WARNING):
        page = _register(live_server, lms)
    assert page.status_code == 400 and "another host" in page.text
    assert "dynamic registration failed" in caplog.text
    assert lms.registration_requests == [] and not Registration.objects.exists()


def test_missing_configuration_url_is_refused(live_server):
    page = browser().get(live_server.url + "/lti/register/")
    assert page.status_code == 400 and "incomplete" in page.text


def test_host_outside_the_allowed_list_is_not_contacted(lms, live_server, settings, caplog):
    settings.LTI_ALLOWED_PLATFORM_HOSTS = ["moodle.example.edu"]
    with caplog.at_level(logging.WARNING):
        page = _register(live_server, lms)
    assert page.status_code == 400 and "allowed platforms" in page.text
    assert lms.requests == [] and not Registration.objects.exists()
    assert "not in LTI_ALLOWED_PLATFORM_HOSTS" in caplog.text
