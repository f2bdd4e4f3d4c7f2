"""Per-person budgets of generated questions (tutor/questions/quotas.py): the installation's day and week limits, a
course's own set by an admin, counted per person and course when questions are asked for, shown on the Questions
page before they run out, and a request over them refused on the page and in the API (HTTP 429, Retry-After) with
when it renews, nothing of it stored or queued. Through the real stack: the Celery worker writes what was allowed
with the stub model on loopback."""

from datetime import timedelta

import pytest
from django.utils import timezone, translation

from courses import sections as course_sections
from courses.models import Membership
from tests.support import make_member, point_tutor_at, session_headers, wait_for
from tests.test_tutor_api import lecturer_token
from tests.test_tutor_generation import BOOK, BookModel, finished_run
from tutor.models import TutorConfig
from tutor.questions import generation, items, quotas
from tutor.questions.models import GenerationPart, GenerationRequest, GenerationRun, Question, QuestionSet

pytestmark = [pytest.mark.django_db(transaction=True)]

COURSE_TEXTS = [("buch.md", BOOK)]  # four sections


@pytest.fixture
def queued(monkeypatch):
    """The parts queued for the worker (recorded, not run: these tests only count)."""
    sent = []
    monkeypatch.setattr("tutor.questions.tasks.generate_question_part.apply_async",
                        lambda args, **options: sent.append(args[0]))
    return sent


def test_the_page_shows_the_budget_counts_it_down_and_refuses_a_request_over_it(client, course, settings, queued):
    settings.GENERATION_QUOTA_DAY, settings.GENERATION_QUOTA_WEEK = 5, 8
    lecturer, token = make_member(course, Membership.INSTRUCTOR)
    headers = session_headers(token)
    document = course.documents.get()
    page = client.get(f"/c/{course.pk}/questions/", headers=headers).content.decode()
    assert "5 generated questions left today; 8 generated questions left this week" in page

    ask = {"document": document.pk, "count": 1, "mode": "sections", "kind": [items.Question.SINGLE]}
    assert client.post(f"/c/{course.pk}/questions/", ask, headers=headers).status_code == 302
    assert len(queued) == 4 and GenerationRequest.objects.get(user=lecturer).items == 4  # 1 per section, 4 sections
    page = client.get(f"/c/{course.pk}/questions/", headers=headers).content.decode()
    assert "1 generated question left today; 4 generated questions left this week" in page  # before it runs out

    refused = client.post(f"/c/{course.pk}/questions/", {**ask, "mode": "one"}, headers=headers, follow=True)
    text = refused.content.decode()
    assert "You asked for 4 questions, but only 1 of today&#x27;s 5 generated questions are left" in text
    assert GenerationRun.objects.count() == 1 and QuestionSet.objects.filter(parts__isnull=False).distinct().count() \
        == 4 and len(queued) == 4  # nothing of the refused request is kept or queued
    assert GenerationRequest.objects.filter(user=lecturer).count() == 1

    other, other_token = make_member(course, Membership.INSTRUCTOR)  # per person: a colleague has their own
    section = course_sections.chosen_sections(course, document_ids=[document.pk])[0]
    assert client.post(f"/c/{course.pk}/questions/", {"section": section.pk, "count": 1, "mode": "one"},
                       headers=session_headers(other_token)).status_code == 302
    assert GenerationRequest.objects.filter(user=other).exists()


def test_a_request_that_generates_nothing_new_is_not_counted(course, settings, queued):
    settings.GENERATION_QUOTA_DAY = 4
    lecturer, _token = make_member(course, Membership.INSTRUCTOR)
    sections = course_sections.chosen_sections(course, document_ids=[course.documents.get().pk])
    run = generation.start_run(course, sections, 1, [items.Question.SINGLE], user=lecturer)
    assert quotas.summary(course, lecturer) == "0 generated questions left today"
    GenerationPart.objects.filter(run=run).update(state=GenerationPart.DONE, made=1)
    generation.start_run(course, sections, 1, [items.Question.SINGLE], user=lecturer)  # every section has its one
    assert GenerationRequest.objects.filter(user=lecturer).count() == 1
    with pytest.raises(quotas.QuotaExceeded, match="generated questions of today"):
        generation.start_run(course, sections, 2, [items.Question.SINGLE], user=lecturer)


def test_the_week_counts_from_monday_and_a_courses_own_budget_overrides_the_installation(course, settings):
    settings.GENERATION_QUOTA_WEEK = 10
    lecturer, _token = make_member(course, Membership.INSTRUCTOR)
    GenerationRequest.objects.create(course=course, user=lecturer, items=10,
                                     created_at=timezone.now() - timedelta(days=8))  # last week's
    quotas.spend(course, lecturer, 6)
    assert quotas.summary(course, lecturer) == "4 generated questions left this week"
    with pytest.raises(quotas.QuotaExceeded, match="only 4 of this week's 10") as refused:
        quotas.spend(course, lecturer, 5)
    assert refused.value.renews_at.weekday() == 0 and refused.value.renews_at > timezone.now()
    assert 0 < refused.value.retry_after <= 7 * 24 * 3600

    config = TutorConfig.for_course(course)
    config.generation_quota_week = 0  # the admin lifts the limit for this course
    config.save()
    quotas.spend(course, lecturer, 50)
    assert quotas.summary(course, lecturer) == ""
    settings.GENERATION_QUOTA_WEEK = 0
    config.generation_quota_day = 3  # and sets one where the installation has none
    config.save()
    with translation.override("de"):
        assert quotas.summary(course, lecturer) == "noch 0 generierte Fragen heute"
        with pytest.raises(quotas.QuotaExceeded, match="Sie haben heute schon die 3 generierten Fragen"):
            quotas.spend(course, lecturer, 1)


@pytest.mark.worker
def test_the_api_generates_within_the_budget_and_refuses_over_it_with_when_it_renews(celery_worker, stub_llm,
                                                                                    client, course, settings):
    settings.GENERATION_QUOTA_DAY = 3
    point_tutor_at(course, stub_llm.url, question_method=TutorConfig.WHOLE_PASSAGE)
    stub_llm.reply = BookModel()
    lecturer, auth = lecturer_token(course)
    init, services = course_sections.chosen_sections(course, document_ids=[course.documents.get().pk])[:2]
    started = client.post(f"/api/v1/courses/{course.pk}/generation-runs/", {
        "sections": [init.pk], "per_section": 2, "kinds": [items.Question.SINGLE]},
        content_type="application/json", headers=auth)
    assert started.status_code == 202, started.content
    run = GenerationRun.objects.get()
    wait_for(lambda: finished_run(run.pk), timeout=120)
    assert Question.objects.filter(question_set__course=course).count() == 2  # the worker wrote what was allowed

    over = client.post(f"/api/v1/courses/{course.pk}/generation-runs/", {
        "sections": [services.pk], "per_section": 2, "kinds": [items.Question.SINGLE]},
        content_type="application/json", headers=auth)
    assert over.status_code == 429 and over["Content-Type"] == "application/problem+json"
    assert over.json()["code"] == "quota" and "only 1 of today's 3" in over.json()["detail"]
    assert 0 < int(over["Retry-After"]) <= 24 * 3600 + 3600  # until midnight (a day with a clock change: 25 h)
    one_set = client.post(f"/api/v1/courses/{course.pk}/question-sets/", {
        "sections": [services.pk], "count": 2, "title": "Dienste"}, content_type="application/json", headers=auth)
    assert one_set.status_code == 429 and not QuestionSet.objects.filter(title="Dienste").exists()
    assert GenerationRun.objects.count() == 1
    assert client.post(f"/api/v1/courses/{course.pk}/question-sets/", {
        "sections": [services.pk], "count": 1, "title": "Dienste"}, content_type="application/json",
        headers=auth).status_code == 202  # the last one of the day
