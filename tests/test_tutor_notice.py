"""The AI-use notice (tutor/chat/notice.py): a student's first visit shows it instead of the chat, asking before
accepting is refused, the acceptance is recorded per person and text, the institution sets the text, teachers are
not asked, and the processing record it links is served."""

import pytest
from django.urls import reverse

from config import privacy
from courses.models import Membership
from tests.support import make_member, session_headers
from tutor.models import AiNoticeAcceptance, Message, TutorConfig

pytestmark = pytest.mark.django_db(transaction=True)  # the async ask view works on other threads' connections


@pytest.fixture(autouse=True)
def notice_on(settings, monkeypatch):
    settings.AI_NOTICE_REQUIRED = True  # the test suite's default is off (DJANGO_ENV=test)
    # a session Celery worker started by other tests would answer at once: only record the queueing
    monkeypatch.setattr("tutor.tasks.chat_answer.delay", lambda message_id, *language: None)


def home(client, course, token):
    return client.get(reverse("tutor:home", args=[course.pk]), headers=session_headers(token)).content.decode()


def test_a_student_accepts_the_notice_once_before_the_first_question(client, course):
    config = TutorConfig.for_course(course)
    config.retention_days = 90
    config.save()
    student, token = make_member(course)
    page = home(client, course, token)
    assert "Before you start: about this tutor" in page and "can be wrong" in page and "90 days" in page
    assert reverse("processing-record") in page and 'id="ask-form"' not in page
    refused = client.post(reverse("tutor:ask", args=[course.pk]), {"text": "Was ist PID 1?"}, headers=session_headers(token))
    assert refused.status_code == 403 and "accept the notice" in refused.json()["error"]
    assert not Message.objects.exists()

    accepted = client.post(reverse("tutor:accept_notice", args=[course.pk]), headers=session_headers(token))
    assert accepted.status_code == 302 and reverse("tutor:home", args=[course.pk]) in accepted["Location"]
    record = AiNoticeAcceptance.objects.get(user=student)
    assert record.accepted_at and len(record.version) == 16
    assert 'id="ask-form"' in home(client, course, token)
    assert client.post(reverse("tutor:ask", args=[course.pk]), {"text": "Was ist PID 1?"}, headers=session_headers(token)).status_code == 200
    assert privacy.export_user_data(student.pk)["ai_notice"]["version"] == record.version

    _other, other_token = make_member(course)  # per person: the next student is asked too
    assert "Before you start: about this tutor" in home(client, course, other_token)
    _teacher, teacher_token = make_member(course, Membership.INSTRUCTOR)
    assert 'id="ask-form"' in home(client, course, teacher_token)


def test_the_institutions_text_is_shown_and_a_changed_text_is_asked_again(client, course, settings, tmp_path):
    text = tmp_path / "notice.txt"
    text.write_text("Der KI-Tutor der Hochschule Beispiel.\n\nAntworten können Fehler enthalten.\n", encoding="utf-8")
    settings.AI_NOTICE_FILE = str(text)
    _student, token = make_member(course)
    page = home(client, course, token)
    assert "<p>Der KI-Tutor der Hochschule Beispiel.</p>" in page and "can be wrong" not in page
    client.post(reverse("tutor:accept_notice", args=[course.pk]), headers=session_headers(token))
    assert 'id="ask-form"' in home(client, course, token)
    text.write_text("Neue Fassung: der KI-Tutor.\n", encoding="utf-8")
    assert "Neue Fassung: der KI-Tutor." in home(client, course, token)  # a new text is a new acceptance


def test_the_processing_record_is_served_publicly(client):
    response = client.get(reverse("processing-record"))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    assert "tutor_ainoticeacceptance" in response.content.decode()
