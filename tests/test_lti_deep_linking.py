"""Deep linking round trip: the platform asks, the lecturer picks the tutor, the platform verifies the answer."""

import logging
import re

import jwt
import pytest

from courses.models import Course, PersonSession
from tests.lti_support import ROLE, browser
from tests.support import make_released_set
from tutor.questions.models import QuestionSet

pytestmark = pytest.mark.django_db(transaction=True)


def _form(html):
    action = re.search(r'<form id="lti-[^"]+" method="post" action="([^"]+)"', html)[1]
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))
    return action, fields


def test_lecturer_places_the_tutor_and_the_platform_accepts_the_signed_response(lti_platform, live_server):
    client = browser()
    page = lti_platform.launch(client, user_id="teacher", roles=[ROLE + "Instructor"], deep_link=True)
    assert page.status_code == 200, page.text
    assert 'value="tutor"' in page.text and "there are none yet" in page.text

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
    assert PersonSession.objects.count() == 0


def test_tampered_choice_form_is_refused(lti_platform, live_server, caplog):
    client = browser()
    page = lti_platform.launch(client, user_id="teacher", roles=[ROLE + "Instructor"], deep_link=True)
    action, fields = _form(page.text)
    with caplog.at_level(logging.WARNING):
        answer = client.post(live_server.url + action, data={"token": fields["token"] + "x", "choice": "tutor"})
    assert answer.status_code == 403 and "expired" in answer.text
    assert "deep linking token invalid" in caplog.text


def test_lecturer_places_a_graded_question_set_with_a_line_item(lti_platform, live_server):
    client = browser()
    assert lti_platform.launch(client, user_id="teacher", roles=[ROLE + "Instructor"]).status_code == 302
    course = Course.objects.get()
    question_set = make_released_set(course)
    QuestionSet.objects.create(course=course, title="Noch ein Entwurf")  # drafts are never offered

    page = lti_platform.launch(client, user_id="teacher", roles=[ROLE + "Instructor"], deep_link=True)
    assert f'value="set:{question_set.pk}"' in page.text and "Systemstart: Fragen" in page.text
    assert "Noch ein Entwurf" not in page.text and 'name="graded"' in page.text
    action, fields = _form(page.text)
    answer = client.post(live_server.url + action, data={**fields, "choice": f"set:{question_set.pk}", "graded": "1"})
    assert answer.status_code == 200, answer.text
    _return_url, returned = _form(answer.text)

    items = lti_platform.conf.validate_deeplinking_resp({"JWT": returned["JWT"]})  # checks our JWKS over HTTP
    assert items == [{
        "type": "ltiResourceLink", "title": "Systemstart: Fragen", "url": live_server.url + "/lti/launch",
        "custom": {"placement": "question_set", "question_set": str(question_set.pk)},
        "lineItem": {"scoreMaximum": 3, "label": "Systemstart: Fragen",
                     "resourceId": f"tutor-question-set-{question_set.pk}", "tag": "tutor-practice"}}]
    assert QuestionSet.objects.get(pk=question_set.pk).graded


def test_a_set_of_another_course_or_a_draft_cannot_be_placed(lti_platform, live_server, caplog):
    client = browser()
    lti_platform.launch(client, user_id="teacher", roles=[ROLE + "Instructor"])
    other = make_released_set(Course.objects.create(title="Anderer Kurs"))
    draft = QuestionSet.objects.create(course=Course.objects.get(title="Kurs course-A"), title="Entwurf")
    page = lti_platform.launch(client, user_id="teacher", roles=[ROLE + "Instructor"], deep_link=True)
    action, fields = _form(page.text)
    for choice in (f"set:{other.pk}", f"set:{draft.pk}", "set:x"):
        with caplog.at_level(logging.WARNING):
            answer = client.post(live_server.url + action, data={**fields, "choice": choice, "graded": "1"})
        assert answer.status_code == 400 and "Please choose what to place" in answer.text
        assert f"unknown deep linking choice {choice!r}" in caplog.text
    assert not QuestionSet.objects.filter(graded=True).exists()
