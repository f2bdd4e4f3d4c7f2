"""Per-person question budgets (tutor/chat/quotas.py): the installation's day and week limits, a course's own set by
an admin, counted per person and course in the institution's time zone, shown on the chat page before they run
out, and a question over them refused (HTTP 429) with when it renews."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from courses.models import Course
from tests.support import make_member, session_headers
from tutor.chat import conversations, quotas
from tutor.models import Message, TutorConfig

pytestmark = pytest.mark.django_db(transaction=True)  # the async ask view works on other threads' connections


@pytest.fixture(autouse=True)
def nothing_answered(monkeypatch):
    """Only record the queueing: a session Celery worker started by other tests would answer at once."""
    monkeypatch.setattr("tutor.tasks.chat_answer.delay", lambda message_id, *language: None)


def test_the_day_budget_is_shown_counts_down_and_refuses_the_question_over_it(client, course, settings):
    settings.CHAT_QUOTA_DAY, settings.CHAT_QUOTA_WEEK = 3, 10
    student, token = make_member(course)
    page = client.get(reverse("tutor:home", args=[course.pk]), headers=session_headers(token)).content.decode()
    assert "3 questions left today; 10 questions left this week" in page
    for number in range(2):
        conversations.ask(course, student, f"Frage {number}")
    page = client.get(reverse("tutor:home", args=[course.pk]), headers=session_headers(token)).content.decode()
    assert "1 question left today; 8 questions left this week" in page  # before it runs out
    ask = reverse("tutor:ask", args=[course.pk])
    assert client.post(ask, {"text": "Frage 3"}, headers=session_headers(token)).status_code == 200
    refused = client.post(ask, {"text": "Frage 4"}, headers=session_headers(token))
    assert refused.status_code == 429 and "questions of today" in refused.json()["error"]
    assert Message.objects.filter(role=Message.USER).count() == 3  # nothing stored for the refused one
    other_course = Course.objects.create(title="Anderer Kurs")  # per course: another course has its own budget
    from courses.models import Membership

    Membership.objects.create(course=other_course, user=student)
    conversations.ask(other_course, student, "Frage woanders")


def test_the_week_counts_from_monday_and_last_weeks_questions_do_not(course, settings):
    settings.CHAT_QUOTA_WEEK = 2
    student, _token = make_member(course)
    conversations.ask(course, student, "alte Frage")
    Message.objects.update(created_at=timezone.now() - timedelta(days=8))  # last week
    conversations.ask(course, student, "Frage 1")
    conversations.ask(course, student, "Frage 2")
    with pytest.raises(conversations.QuotaExceeded, match="questions of this week"):
        conversations.ask(course, student, "Frage 3")
    today, monday = quotas.period_starts()
    assert monday.weekday() == 0 and monday <= today and (monday.hour, monday.minute) == (0, 0)
    assert str(today.tzinfo) == settings.TIME_ZONE


def test_a_courses_own_budget_overrides_the_installation(course, settings):
    settings.CHAT_QUOTA_DAY = 1
    config = TutorConfig.for_course(course)
    config.quota_day = 0  # the admin lifts the limit for this course
    config.save()
    student, _token = make_member(course)
    for number in range(3):
        conversations.ask(course, student, f"Frage {number}")
    settings.CHAT_QUOTA_DAY = 0
    config.quota_day = 3  # and sets one where the installation has none
    config.save()
    with pytest.raises(conversations.QuotaExceeded):
        conversations.ask(course, student, "Frage 4")
    assert quotas.summary(course, student) == "0 questions left today"
