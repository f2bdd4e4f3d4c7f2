"""Queries that do not grow with the data: each list page and list endpoint makes as many queries for one item as
for fifty (a page of the API), and the course purge's search for inactive courses is one query for any number."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from courses.models import ApiToken, Course, Membership
from courses.privacy import inactive_courses
from tests.support import make_member, session_headers
from tutor.chat.models import Conversation, Feedback, Message
from tutor.questions.models import GenerationPart, GenerationRun, Question, QuestionSet

pytestmark = pytest.mark.django_db

MANY = 50  # one page of the API (config.api.Pagination)


def queries_of(call):
    """(the number of queries, the result) of call()."""
    with CaptureQueriesContext(connection) as captured:
        result = call()
    return len(captured.captured_queries), result


def add_sets(course, n, questions=3):
    """n draft sets, each with questions (one of them being rewritten now) and a generation part."""
    run = GenerationRun.objects.create(course=course, title="Lauf")
    for i in range(n):
        question_set = QuestionSet.objects.create(course=course, title=f"Satz {i}", generation=QuestionSet.DONE,
                                                  requested=questions)
        GenerationPart.objects.create(question_set=question_set, run=run, requested=questions)
        for position in range(1, questions + 1):
            Question.objects.create(question_set=question_set, position=position, stem=f"Frage {position}?",
                                    options=["A", "B", "C"], correct_index=0, review=Question.APPROVED,
                                    revising="option:1" if position == 1 else "")


def add_runs(course, n):
    """n generation runs, each with a part of its own set."""
    for i in range(n):
        run = GenerationRun.objects.create(course=course, title=f"Lauf {i}")
        question_set = QuestionSet.objects.create(course=course, title=f"Lauf-Satz {i}", requested=2)
        GenerationPart.objects.create(question_set=question_set, run=run, requested=2)


def add_chats(course, user, n):
    """n conversations of the user, each a question, a declined answer and a rating."""
    for i in range(n):
        conversation = Conversation.objects.create(course=course, user=user)
        Message.objects.create(conversation=conversation, role=Message.USER, text=f"Was macht systemd {i}?")
        answer = Message.objects.create(conversation=conversation, role=Message.ASSISTANT, text="Weiß nicht.",
                                        declined=True)
        Feedback.objects.create(message=answer, rating=Feedback.UP, comment=f"Kommentar {i}")


def same_for_one_and_many(make, count):
    """make(course, n) fills a course with n items and returns a fetch of its list: one course with one item and
    one with MANY take the same number of queries, and count(result) sees all items."""
    course_one, course_many = Course.objects.create(title="Eins"), Course.objects.create(title="Viele")
    fetch_one, fetch_many = make(course_one, 1), make(course_many, MANY)
    fetch_one(), fetch_many()  # what a first request loads once (caches, a token's last use) is not the list's cost
    one, result_one = queries_of(fetch_one)
    many, result_many = queries_of(fetch_many)
    assert (count(result_one), count(result_many)) == (1, MANY)
    assert many == one, f"{one} queries for one item, {many} for {MANY}"


def api(client, path, fill):
    """make() for an API list: a lecturer's read token, the data made by fill(course, user, n), a GET of path."""
    def make(course, n):
        user, _ = make_member(course, Membership.INSTRUCTOR)
        _token, secret = ApiToken.issue(user, name="Zähler", scope=ApiToken.READ, course=course)
        fill(course, user, n)
        url = f"/api/v1/courses/{course.pk}/{path(course)}"

        def fetch():
            response = client.get(url, HTTP_AUTHORIZATION=f"Bearer {secret}")
            assert response.status_code == 200, response.content
            return response.json()
        return fetch
    return make


def page(client, path, fill, role=Membership.INSTRUCTOR):
    """make() for a page: a member's launch token, the data made by fill(course, user, n), a GET of the page."""
    def make(course, n):
        user, token = make_member(course, role)
        fill(course, user, n)

        def fetch():
            response = client.get(f"/c/{course.pk}/{path}", headers=session_headers(token))
            assert response.status_code == 200
            return response.content.decode()
        return fetch
    return make


def results(body):
    """The items of an API page."""
    return len(body["results"])


# --- The API's lists ------------------------------------------------------------------------------------------

def test_the_question_sets_endpoint(client):
    def count(body):
        assert all((s["questions"], s["approved"], s["revising"], len(s["parts"])) == (3, 3, 1, 1)
                   for s in body["results"])
        return results(body)
    same_for_one_and_many(api(client, lambda c: "question-sets/", lambda c, u, n: add_sets(c, n)), count)


def test_the_questions_endpoint_of_a_set(client):
    def path(course):
        return f"question-sets/{QuestionSet.objects.get(course=course).pk}/questions/"
    same_for_one_and_many(api(client, path, lambda c, u, n: add_sets(c, 1, questions=n)), results)


def test_the_generation_runs_endpoint(client):
    def count(body):
        assert all(len(run["parts"]) == 1 for run in body["results"])
        return results(body)
    same_for_one_and_many(api(client, lambda c: "generation-runs/", lambda c, u, n: add_runs(c, n)), count)


def test_the_conversations_endpoint(client):
    same_for_one_and_many(api(client, lambda c: "conversations/", add_chats), results)


# --- The pages' lists -----------------------------------------------------------------------------------------

def test_the_questions_page(client):
    """Each set's row counts its questions (3)."""
    same_for_one_and_many(page(client, "questions/", lambda c, u, n: add_sets(c, n)),
                          lambda html: html.count("<td>3</td>"))


def test_the_practice_page(client):
    def fill(course, user, n):
        add_sets(course, n)
        QuestionSet.objects.filter(course=course).update(status=QuestionSet.RELEASED, released_at=timezone.now())
    same_for_one_and_many(page(client, "practice/", fill, Membership.LEARNER),
                          lambda html: html.count("Satz "))


def test_the_usage_page(client, settings):
    settings.USAGE_MIN_STUDENTS = 1
    def count(html):  # the questions so far, the first number of the page
        return int(re.search(r"<p>(\d+) ", html).group(1))
    same_for_one_and_many(page(client, "usage/", add_chats), count)


# --- The purge of inactive courses ----------------------------------------------------------------------------

def test_inactive_courses_is_one_query_for_any_number_of_courses():
    """Each course with roles, chats: found by its latest sign of life, in one query however many there are."""
    long_ago = timezone.now() - timedelta(days=800)
    user, _ = make_member(Course.objects.create(title="Aktiv"))
    add_chats(Course.objects.get(title="Aktiv"), user, 2)
    counts = []
    for n in (1, 10):
        Course.objects.exclude(title="Aktiv").delete()
        for i in range(n):
            course = Course.objects.create(title=f"Alt {i}")
            stale_user, _ = make_member(course)
            add_chats(course, stale_user, 2)
        Course.objects.exclude(title="Aktiv").update(created_at=long_ago)
        Membership.objects.exclude(course__title="Aktiv").update(updated_at=long_ago)
        Conversation.objects.exclude(course__title="Aktiv").update(updated_at=long_ago)
        queries, found = queries_of(lambda: inactive_courses(730))
        assert sorted(c.title for c in found) == sorted(f"Alt {i}" for i in range(n))
        assert all(abs(c.last_seen - long_ago) < timedelta(seconds=1) for c in found)
        counts.append(queries)
    assert counts == [1, 1]
    Course.objects.filter(title="Aktiv").update(created_at=long_ago)
    assert "Aktiv" not in {c.title for c in inactive_courses(730)}  # its roles and chats are recent
