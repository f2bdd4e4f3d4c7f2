"""The tutor's pages and endpoints: access, asking, rate limit, feedback, lecturer settings and usage."""

import json

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from courses.models import Course, Membership
from tests.support import make_member, session_headers
from tutor.chat import conversations
from tutor.chat.models import Conversation, Feedback, Message, TestQuestion
from tutor.models import TutorConfig

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _release_pool_connections():
    """The async ask view works on a thread pool; let its connections go with its threads after each test."""
    yield
    import gc

    gc.collect()


def test_the_chat_page_shows_the_welcome_and_the_history(client, course):
    user, token = make_member(course)
    TutorConfig.objects.create(course=course, welcome_message="Willkommen im Kurs!")
    conversation = Conversation.objects.create(course=course, user=user)
    Message.objects.create(conversation=conversation, role=Message.USER, text="Frühere Frage")
    response = client.get(reverse("tutor:home", args=[course.pk]), headers=session_headers(token))
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]  # private; and Back must not show a stale conversation
    body = response.content.decode()
    assert "Willkommen im Kurs!" in body
    history = json.loads(body.split('id="tutor-history" type="application/json">')[1].split("</script>")[0])
    assert history[0]["role"] == "user" and "Frühere Frage" in history[0]["html"]
    assert reverse("tutor:settings", args=[course.pk]) not in body


def test_teachers_see_links_to_their_pages(client, course):
    _, token = make_member(course, Membership.INSTRUCTOR)
    body = client.get(reverse("tutor:home", args=[course.pk]), headers=session_headers(token)).content.decode()
    for name in ("tutor:settings", "courses:documents", "tutor:usage"):
        assert f'href="{reverse(name, args=[course.pk])}"' in body  # no credential in any link


def test_a_teacher_landing_on_the_chat_sees_how_far_the_tutor_is_set_up(client, course):
    """Lecturers land on the students' chat: a panel points them to texts, settings, questions and usage."""
    _, token = make_member(course, Membership.INSTRUCTOR)
    body = client.get(reverse("tutor:home", args=[course.pk]),
                      HTTP_ACCEPT_LANGUAGE="de", headers=session_headers(token)).content.decode()
    assert 'class="teacher-panel' in body and "Für Lehrende:" in body
    assert "0 bereit" in body and "hat noch keine Kurstexte" in body  # an empty course: texts come first
    _, student = make_member(course)
    assert "teacher-panel" not in client.get(reverse("tutor:home", args=[course.pk]), headers=session_headers(student)).content.decode()


def test_without_a_model_the_chat_says_so_before_anyone_asks(client, course, settings):
    _, token = make_member(course)
    settings.INFERENCE_URLS = []
    body = client.get(reverse("tutor:home", args=[course.pk]), headers=session_headers(token)).content.decode()
    assert 'id="no-model"' in body and "No language model is set up" in body
    settings.INFERENCE_URLS = ["http://127.0.0.1:8089/v1"]
    assert 'id="no-model"' not in client.get(reverse("tutor:home", args=[course.pk]), headers=session_headers(token)).content.decode()


def test_strangers_and_other_courses_are_refused(client, course):
    other = Course.objects.create(title="Anderer Kurs")
    _, token = make_member(other)
    assert client.get(reverse("tutor:home", args=[course.pk]), headers=session_headers(token)).status_code == 403
    assert client.get(reverse("tutor:home", args=[course.pk])).status_code == 403


def test_learners_may_not_open_the_lecturer_pages(client, course):
    _, token = make_member(course)
    assert client.get(reverse("tutor:settings", args=[course.pk]), headers=session_headers(token)).status_code == 403
    assert client.get(reverse("tutor:usage", args=[course.pk]), headers=session_headers(token)).status_code == 403


@pytest.mark.django_db(transaction=True)  # the async view works on other threads' connections
def test_asking_stores_the_question_and_a_pending_answer(client, course, monkeypatch):
    queued = []
    # a session Celery worker started by other tests would answer it before it is read: only record the queueing
    monkeypatch.setattr("tutor.chat.tasks.chat_answer.delay", lambda message_id, *language: queued.append(message_id))
    user, token = make_member(course)
    response = client.post(reverse("tutor:ask", args=[course.pk]), {"text": "Was ist PID 1?"}, headers=session_headers(token))
    assert response.status_code == 200
    answer = Message.objects.get(pk=response.json()["answer_id"])
    assert answer.status == Message.PENDING and answer.conversation.user == user
    assert queued == [answer.pk]
    assert response.json()["stream_url"] == reverse("tutor:stream", args=[course.pk, answer.pk])
    assert client.post(reverse("tutor:ask", args=[course.pk]), {"text": "  "}, headers=session_headers(token)).status_code == 400


def test_one_message_as_json_only_for_its_author(client, course):
    user, token = make_member(course)
    question, _ = conversations.ask(course, user, "Was ist **apt**?")
    url = reverse("tutor:message", args=[course.pk, question.pk])
    assert client.get(url, headers=session_headers(token)).json()["html"] == "<p>Was ist <strong>apt</strong>?</p>"
    _, other_token = make_member(course)
    assert client.get(url, headers=session_headers(other_token)).status_code == 404


def test_django_s_deploy_check_sees_the_csrf_protection():
    """`manage.py check --deploy` finds Django's CsrfViewMiddleware (config.middleware's subclass, its hooks inline
    where they need no database), by class: config.checks runs Django's W003 as if its name were listed."""
    from django.core.checks.security.csrf import check_csrf_middleware
    from django.middleware.csrf import CsrfViewMiddleware
    from django.test.utils import override_settings
    from django.utils.module_loading import import_string

    from config.checks import middleware_by_class, security_checks_by_class

    listed = [import_string(path) for path in settings.MIDDLEWARE]
    assert any(isinstance(found, type) and issubclass(found, CsrfViewMiddleware) for found in listed)
    with override_settings(MIDDLEWARE=middleware_by_class(settings.MIDDLEWARE)):
        assert check_csrf_middleware(None) == [] and settings.CSRF_USE_SESSIONS
    assert not [m for m in security_checks_by_class(None) if m.id == "config.W003"]


@pytest.mark.django_db(transaction=True)  # the async view works on other threads' connections
def test_a_cross_site_post_is_refused_by_the_csrf_check(course, monkeypatch):
    """Another site's form posts with the person's cookie but cannot know the session's CSRF token: Django's
    CsrfViewMiddleware refuses it before the view (no course view is exempt)."""
    monkeypatch.setattr("tutor.chat.tasks.chat_answer.delay", lambda message_id, *language: None)
    user, key = make_member(course)
    browser = Client(enforce_csrf_checks=True)
    browser.cookies[settings.SESSION_COOKIE_NAME] = key  # the cookie the browser would send along
    forged = browser.post(reverse("tutor:ask", args=[course.pk]), {"text": "Frage"},
                          headers={"Origin": "https://evil.example"})
    assert forged.status_code == 403 and b"CSRF" in forged.content
    assert browser.post(reverse("tutor:ask", args=[course.pk]), {"text": "Frage"}).status_code == 403  # no token
    assert not Message.objects.exists()
    own = browser.post(reverse("tutor:ask", args=[course.pk]), {"text": "Frage"}, headers=session_headers(key))
    assert own.status_code == 200 and Message.objects.filter(role=Message.USER).count() == 1


@pytest.mark.django_db(transaction=True)  # the async view works on other threads' connections
def test_too_many_questions_get_a_friendly_message(client, course, settings):
    settings.CHAT_RATE_LIMIT = 2
    _, token = make_member(course)
    url = reverse("tutor:ask", args=[course.pk])
    statuses = [client.post(url, {"text": f"Frage {i}"}, headers=session_headers(token)).status_code for i in range(3)]
    assert statuses == [200, 200, 429]
    last = client.post(url, {"text": "Frage"}, headers=session_headers(token))
    assert "wait a minute" in last.json()["error"]
    assert Message.objects.filter(role=Message.USER).count() == 2


def test_rate_limit_is_per_person(course, settings):
    settings.CHAT_RATE_LIMIT = 1
    first, _ = make_member(course)
    second, _ = make_member(course)
    conversations.ask(course, first, "eins")
    conversations.ask(course, second, "zwei")
    with pytest.raises(conversations.RateLimited):
        conversations.ask(course, first, "drei")


def test_thumbs_down_with_a_comment_on_ones_own_answer(client, course):
    user, token = make_member(course)
    _, answer = conversations.ask(course, user, "Frage")
    url = reverse("tutor:feedback", args=[course.pk, answer.pk])
    assert client.post(url, {"rating": "down", "comment": "Zu ungenau"}, headers=session_headers(token)).status_code == 200
    feedback = Feedback.objects.get(message=answer)
    assert feedback.rating == Feedback.DOWN and feedback.comment == "Zu ungenau"
    _, stranger_token = make_member(course)
    assert client.post(url, {"rating": "up"}, headers=session_headers(stranger_token)).status_code == 404


def test_the_lecturer_changes_the_tutor_settings(client, course, settings):
    """Lecturers set the teaching settings; the server address and time limit are not on their page."""
    _, token = make_member(course, Membership.INSTRUCTOR)
    url = reverse("tutor:settings", args=[course.pk])
    page = client.get(url, headers=session_headers(token)).content.decode()
    assert 'name="strictness"' in page and 'name="quote_check"' in page and 'name="query_rewrite"' in page
    assert 'name="endpoint"' not in page and 'name="timeout_seconds"' not in page and 'name="model"' not in page
    data = {"answer_language": "en", "strictness": "open", "sources": 3, "temperature": 0.5,
            "welcome_message": "Hi!", "system_prompt": "", "retention_days": 30, "quote_check": "off",
            "query_rewrite": "on", "endpoint": "http://elsewhere.example/v1", "timeout_seconds": "5"}
    assert client.post(url, data, headers=session_headers(token)).status_code == 302
    config = TutorConfig.objects.get(course=course)
    assert (config.answer_language, config.strictness, config.sources, config.retention_days) == ("en", "open", 3, 30)
    assert (config.checks_quotes, config.rewrites_queries) == (False, True)
    assert (config.endpoint, config.timeout_seconds) == ("", None)  # posted, but not the lecturer's to set


def test_lecturers_choose_only_among_the_models_the_admin_allows(client, course, settings):
    settings.INFERENCE_MODEL_CHOICES = ["qwen2.5-7b", "llama3.1-8b"]
    _, token = make_member(course, Membership.INSTRUCTOR)
    url = reverse("tutor:settings", args=[course.pk])
    page = client.get(url, headers=session_headers(token)).content.decode()
    assert '<option value="qwen2.5-7b">' in page and "smollm2 (the installation" in page
    data = {"answer_language": "auto", "strictness": "strict", "sources": 4, "temperature": 0.2,
            "retention_days": 180, "quote_check": "", "query_rewrite": "", "model": "qwen2.5-7b"}
    assert client.post(url, data, headers=session_headers(token)).status_code == 302
    config = TutorConfig.objects.get(course=course)
    assert config.model_name == "qwen2.5-7b" and config.checks_quotes and config.rewrites_queries
    refused = client.post(url, dict(data, model="gpt-4-from-elsewhere"), headers=session_headers(token))
    assert refused.status_code == 200 and TutorConfig.objects.get(course=course).model == "qwen2.5-7b"
    assert client.post(url, dict(data, model=""), headers=session_headers(token)).status_code == 302
    config = TutorConfig.objects.get(course=course)
    assert config.model_name == "smollm2" and not config.checks_quotes  # the embedded model: checks by default off


def test_the_admin_sets_a_course_s_inference_server_on_allowed_hosts_only(course):
    from tutor.forms import TutorServerForm

    config = TutorConfig.for_course(course)
    base = {"course": course.pk, "answer_language": "auto", "strictness": "strict", "sources": 4,
            "temperature": 0.2, "retention_days": 180, "model": "", "timeout_seconds": 30}
    form = TutorServerForm(dict(base, endpoint="file:///etc/passwd"), instance=config)
    assert not form.is_valid() and "is not an http(s) address" in str(form.errors)
    form = TutorServerForm(dict(base, endpoint="https://llm.example.com/v1"), instance=config)
    assert not form.is_valid() and "is not one of the institution" in str(form.errors)
    form = TutorServerForm(dict(base, endpoint="http://127.0.0.1:8090/v1"), instance=config)
    assert form.is_valid(), form.errors
    form.save()
    assert TutorConfig.objects.get(course=course).timeout_seconds == 30


def test_a_lecturer_adds_test_questions_and_sees_the_declined_ones(client, course, settings):
    settings.USAGE_MIN_STUDENTS = 1  # one student is enough here; the page shows words, never the question
    teacher, token = make_member(course, Membership.INSTRUCTOR)
    student, _ = make_member(course)
    conversation = Conversation.objects.create(course=course, user=student)
    Message.objects.create(conversation=conversation, role=Message.USER, text="Wie hoch ist der Eiffelturm?")
    Message.objects.create(conversation=conversation, role=Message.ASSISTANT, text="…", declined=True)
    url = reverse("tutor:settings", args=[course.pk])
    add = reverse("tutor:add_test", args=[course.pk])
    assert client.post(add, {"question": "Welche PID hat init?",
                                              "expected": "PID 1"}, headers=session_headers(token)).status_code == 302
    assert client.post(add, {"question": ""}, headers=session_headers(token)).status_code == 200  # said why
    page = client.get(url, headers=session_headers(token)).content.decode()
    assert "Welche PID hat init?" in page and "not checked yet" in page
    declined = page.split('id="declined"')[1]
    assert "eiffelturm" in declined and "Wie hoch ist der Eiffelturm?" not in page
    test = TestQuestion.objects.get(course=course)
    client.post(reverse("tutor:delete_test", args=[course.pk, test.pk]), {}, headers=session_headers(token))
    assert not TestQuestion.objects.filter(pk=test.pk).exists()


def test_usage_shows_counts_and_only_words_many_students_used(client, course, settings):
    """k-anonymous: a word (or pair) appears only when USAGE_MIN_STUDENTS people used it; no question's text,
    no name. One student's unusual question stays invisible, however often they ask it."""
    settings.USAGE_MIN_STUDENTS = 3
    teacher, token = make_member(course, Membership.INSTRUCTOR)
    students = [make_member(course)[0] for _ in range(4)]
    for n, student in enumerate(students):
        conversation = Conversation.objects.create(course=course, user=student)
        Message.objects.create(conversation=conversation, role=Message.USER, text=f"Wie startet systemd Dienste {n}?")
        Message.objects.create(conversation=conversation, role=Message.ASSISTANT, text="?", declined=n < 3)
    loner = Conversation.objects.create(course=course, user=students[0])
    for _ in range(5):  # five times, but one person: never shown
        Message.objects.create(conversation=loner, role=Message.USER, text="Was kostet Quantenverschränkung?")
    body = client.get(reverse("tutor:usage", args=[course.pk]), headers=session_headers(token)).content.decode()
    topics = body.split('id="topics"')[1].split("</table>")[0]
    assert "<td>systemd</td><td>4</td>" in topics and "Quantenverschränkung" not in body
    declined = body.split('id="declined"')[1].split("</table>")[0]
    assert "<td>3</td>" in declined and "systemd" in declined
    assert "Wie startet systemd Dienste" not in body  # never a question's text
    assert all(s.username not in body for s in students)
    assert "3 questions were declined" in body


@pytest.mark.django_db(transaction=True)  # the async view works on other threads' connections
def test_a_new_conversation_keeps_the_old_one_reachable_and_private(client, course):
    """'New conversation' starts afresh; the earlier one is listed and opens again; nobody else can open it."""
    user, token = make_member(course)
    ask_url = reverse("tutor:ask", args=[course.pk])
    first = client.post(ask_url, {"text": "Was macht systemd?"}, headers=session_headers(token)).json()
    second = client.post(ask_url, {"text": "Was ist apt?", "new": "1"}, headers=session_headers(token)).json()
    assert first["conversation_id"] != second["conversation_id"]
    third = client.post(ask_url, {"text": "Und dpkg?", "conversation": str(first["conversation_id"])}, headers=session_headers(token)).json()
    assert third["conversation_id"] == first["conversation_id"]

    home = reverse("tutor:home", args=[course.pk])
    page = client.get(home, headers=session_headers(token)).content.decode()
    assert "Earlier conversations" in page and "Was macht systemd?" in page and "Was ist apt?" in page
    old = client.get(home + f"?conversation={second['conversation_id']}", headers=session_headers(token)).content.decode()
    history = old.split('id="tutor-history"')[1].split("</script>")[0]
    assert "Was ist apt?" in history and "systemd" not in history

    _, stranger = make_member(course)
    assert client.get(home + f"?conversation={first['conversation_id']}", headers=session_headers(stranger)).status_code == 404
    refused = client.post(ask_url, {"text": "Hallo", "conversation": str(first["conversation_id"])}, headers=session_headers(stranger))
    assert refused.status_code == 400
