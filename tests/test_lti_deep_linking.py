"""Deep linking round trip: the platform asks, the lecturer picks the tutor, the platform verifies the answer."""

import logging
import re

import jwt
import pytest
from django.contrib.sessions.models import Session

from tests.lti_support import ROLE, browser

pytestmark = pytest.mark.django_db(transaction=True)


def _form(html):
    action = re.search(r'<form id="lti-[^"]+" method="post" action="([^"]+)"', html)[1]
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))
    return action, fields


def test_lecturer_places_the_tutor_and_the_platform_accepts_the_signed_response(lti_platform, live_server):
    client = browser()
    page = lti_platform.launch(client, user_id="teacher", roles=[ROLE + "Instructor"], deep_link=True)
    assert page.status_code == 200, page.text
    assert 'value="tutor"' in page.text and "Question sets are not available yet" in page.text

    action, fields = _form(page.text)
    answer = client.post(live_server.url + action, data={**fields, "choice": "tutor"})
    assert answer.status_code == 200, answer.text
    return_url, returned = _form(answer.text)
    assert return_url == lti_platform.base + "/deep-link-return"

    items = lti_platform.conf.validate_deeplinking_resp({"JWT": returned["JWT"]})  # checks our JWKS over HTTP
    assert items == [{"type": "ltiResourceLink", "title": "Course tutor (chat)", "url": live_server.url + "/lti/launch",
                      "custom": {"placement": "tutor"}}]
    claims = jwt.decode(returned["JWT"], options={"verify_signature": False})
    assert claims["iss"] == lti_platform.client_id and claims["aud"] == [lti_platform.issuer]
    assert claims["https://purl.imsglobal.org/spec/lti/claim/message_type"] == "LtiDeepLinkingResponse"
    assert claims["https://purl.imsglobal.org/spec/lti-dl/claim/data"] == {"data": "opaque-42"}
    assert claims["https://purl.imsglobal.org/spec/lti/claim/deployment_id"] == lti_platform.deployment_id


def test_learner_may_not_place_anything(lti_platform, caplog):
    with caplog.at_level(logging.WARNING):
        page = lti_platform.launch(browser(), user_id="student", roles=[ROLE + "Learner"], deep_link=True)
    assert page.status_code == 403 and "teachers may place the tutor" in page.text
    assert "non-teaching role" in caplog.text
    assert Session.objects.count() == 0


def test_tampered_choice_form_is_refused(lti_platform, live_server, caplog):
    client = browser()
    page = lti_platform.launch(client, user_id="teacher", roles=[ROLE + "Instructor"], deep_link=True)
    action, fields = _form(page.text)
    with caplog.at_level(logging.WARNING):
        answer = client.post(live_server.url + action, data={"token": fields["token"] + "x", "choice": "tutor"})
    assert answer.status_code == 403 and "expired" in answer.text
    assert "deep linking token invalid" in caplog.text
