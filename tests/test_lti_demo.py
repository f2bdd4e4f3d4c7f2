"""The built-in test platform: a real signed launch through /lti/login and /lti/launch into the demo course."""

import re
from urllib.parse import urljoin

import pytest

from courses.demo import ensure_demo_course
from courses.models import Membership
from lti.demo import ensure_test_platform
from lti.models import LtiContext, Registration
from tests.lti_support import browser

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def platform(live_server, settings):
    settings.PUBLIC_URL = live_server.url
    return ensure_test_platform()


def _follow(client, url):
    """Follow redirects and the auto-posting forms like a browser; returns the last response."""
    response = client.get(url, allow_redirects=False)
    for _step in range(6):
        if response.status_code in (301, 302):
            url = urljoin(url, response.headers["Location"])
            if "/c/" in url:
                return response
            response = client.get(url, allow_redirects=False)
        elif 'id="lti-autopost"' in response.text:
            action = re.search(r'<form id="lti-autopost" method="post" action="([^"]+)"', response.text)[1]
            fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', response.text))
            response = client.post(action, data=fields, allow_redirects=False)
        else:
            return response
    return response


def test_ensure_test_platform_is_idempotent_and_maps_the_demo_course(platform):
    again = ensure_test_platform()
    assert again.pk == platform.pk and Registration.objects.count() == 1
    assert platform.issuer.endswith("/lti/test-platform") and platform.deployments.count() == 1
    assert LtiContext.objects.get().course == ensure_demo_course()


@pytest.mark.parametrize("user, role", [("lecturer", Membership.INSTRUCTOR), ("student-1", Membership.LEARNER),
                                        ("ta", Membership.TEACHING_ASSISTANT)])
def test_demo_person_opens_the_demo_course(platform, live_server, user, role):
    client = browser()
    index = client.get(live_server.url + "/lti/test-platform/")
    assert index.status_code == 200 and "start?user=lecturer" in index.text

    final = _follow(client, f"{live_server.url}/lti/test-platform/start?user={user}")

    demo = ensure_demo_course()
    assert final.status_code == 302, final.text
    assert final.headers["Location"].startswith(f"/c/{demo.id}/?ticket=")
    assert Membership.objects.get(course=demo, user__lti_links__sub=f"demo-{user}").role == role


def test_lecturer_places_the_tutor_through_the_test_platform(platform, live_server):
    client = browser()
    choice = _follow(client, f"{live_server.url}/lti/test-platform/start?user=lecturer&deep_link=1")
    assert choice.status_code == 200 and 'id="lti-place"' in choice.text
    token = re.search(r'name="token" value="([^"]+)"', choice.text)[1]
    back = client.post(live_server.url + "/lti/deep-link", data={"token": token, "choice": "tutor"})
    jwt_value = re.search(r'name="JWT" value="([^"]+)"', back.text)[1]
    placed = client.post(live_server.url + "/lti/test-platform/deep-link-return", data={"JWT": jwt_value})
    assert placed.status_code == 200 and "Course tutor (chat)" in placed.text


def test_authorize_refuses_a_foreign_redirect_uri(platform, live_server):
    page = browser().get(live_server.url + "/lti/test-platform/authorize", params={
        "client_id": platform.client_id, "response_type": "id_token", "scope": "openid", "nonce": "n",
        "state": "s", "login_hint": "lecturer", "redirect_uri": "https://evil.example/lti/launch"})
    assert page.status_code == 400 and "not valid" in page.text


def test_test_platform_is_not_registered_when_switched_off(settings):
    settings.LTI_TEST_PLATFORM = False
    assert ensure_test_platform() is None
    assert not Registration.objects.exists()
