"""A person's data across every table (config/privacy.py): the walk over the models that no table with a user
reference escapes, export and erasure of everything about one person, and the daily retention run."""

import json
import os
import time
from datetime import timedelta
from io import StringIO

import pytest
import redis
from django.conf import settings
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.management import CommandError, call_command
from django.utils import timezone

from config import privacy
from courses.documents import add_document
from courses.models import ApiToken, Course, Document, Membership, PersonSession
from courses.sessions import SessionStore
from lti.models import LtiUser, Registration, UsedNonce
from tests.support import make_member, make_released_set
from tutor.chat.models import AiNoticeAcceptance, Citation, Conversation, Feedback, Message
from tutor.chat.stream import buffer_key, final_key
from tutor.models import TutorConfig
from tutor.questions.models import (
    Attempt,
    GenerationRequest,
    GenerationRun,
    OpenAnswerFeedback,
    QuestionChange,
    QuestionSet,
)

pytestmark = pytest.mark.django_db


def test_every_table_with_a_user_reference_is_listed_for_export_and_erasure():
    tables = {table for table, _field in privacy.user_references()}
    assert {"tutor.conversation", "lti.ltiuser", "auth.user_groups"} <= tables  # the walk sees joins and apps
    unlisted = tables - set(privacy.PERSONAL_TABLES) - {"auth.user"}
    assert not unlisted, f"tables that refer to a person but neither export nor erasure covers: {unlisted}"
    assert set(privacy.PERSONAL_TABLES) - {"auth.user"} == tables, "PERSONAL_TABLES lists a table that has no user"


def a_registration(issuer="https://moodle.example.edu"):
    """A platform registration of the LMS at issuer."""
    return Registration.objects.create(issuer=issuer, client_id="tool", auth_login_url=f"{issuer}/auth",
                                       key_set_url=f"{issuer}/jwks")


def a_person_everywhere(course, registration, sub):
    """A person with a row in every table that can refer to one, and a live chat buffer in Redis."""
    user, _session = make_member(course)  # signed in, as after a launch (one session)
    LtiUser.objects.create(registration=registration, sub=sub, user=user, name="Erika Mustermann")
    user.groups.add(Group.objects.get_or_create(name="tutors")[0])
    user.user_permissions.add(Permission.objects.get(codename="view_course"))
    LogEntry.objects.create(user=user, content_type=ContentType.objects.get_for_model(Course), object_id=course.pk,
                            object_repr=course.title, action_flag=ADDITION, change_message="[]")
    conversation = Conversation.objects.create(course=course, user=user)
    Message.objects.create(conversation=conversation, role=Message.USER, text=f"Frage von {sub}")
    answer = Message.objects.create(conversation=conversation, role=Message.ASSISTANT, text="Antwort [1]")
    Citation.objects.create(message=answer, number=1, chunk_id=1, document_title="Skript")
    Feedback.objects.create(message=answer, rating=Feedback.UP, comment="hilfreich")
    question_set = make_released_set(course, title=f"Fragen von {sub}")
    QuestionSet.objects.filter(pk=question_set.pk).update(created_by=user)
    attempt = Attempt.objects.create(question_set=question_set, user=user, answers={}, score=1, max_score=3)
    OpenAnswerFeedback.objects.create(attempt=attempt, question=question_set.questions.first(), ai_text="KI sagt",
                                      lecturer_text=f"Rückmeldung von {sub}", overridden_by=user,
                                      overridden_at=timezone.now())
    GenerationRun.objects.create(course=course, title=f"Lauf von {sub}", created_by=user)
    GenerationRequest.objects.create(course=course, user=user, items=3)
    QuestionChange.objects.create(question=question_set.questions.first(), user=user, action="approved",
                                  changes={"review": ["pending", "approved"]})
    ApiToken.issue(user, name=f"Skript von {sub}", course=course)
    AiNoticeAcceptance.objects.create(user=user, version=f"v-{sub}", accepted_at=timezone.now())
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.set(buffer_key(answer.pk), "Antwort", ex=600)
    client.set(final_key(answer.pk), "{}", ex=600)
    return user, answer


def rows_referring_to(user_id):
    """Per table, the rows that still refer to the account id."""
    from django.apps import apps

    counts = {}
    for table, field in privacy.user_references():
        model = apps.get_model(table)
        count = model.objects.filter(**{f"{field}_id": user_id}).count()
        if count:
            counts[table] = count
    return counts


def test_export_and_erasure_cover_every_table_and_leave_the_others_alone():
    course = Course.objects.create(title="Betriebssysteme")
    registration = a_registration()
    person, answer = a_person_everywhere(course, registration, "42")
    other, other_answer = a_person_everywhere(course, registration, "43")
    assert set(rows_referring_to(person.pk)) == {t for t, _f in privacy.user_references()} - {"auth.user"}

    data = privacy.export_user_data(person.pk)
    assert data["lti_identities"] == [{"platform": "https://moodle.example.edu", "subject": "42",
                                       "name": "Erika Mustermann"}]
    assert data["account"]["groups"] == ["tutors"] and data["account"]["permissions"] == ["view_course"]
    assert [m["role"] for m in data["memberships"]] == [Membership.LEARNER]
    assert data["conversations"][0]["messages"][0]["text"] == "Frage von 42"
    assert data["practice_attempts"][0]["score"] == 1
    assert data["question_sets_created"][0]["title"] == "Fragen von 42"
    assert data["question_runs_started"][0]["title"] == "Lauf von 42" and data["question_changes"][0]["action"] == "approved"
    assert data["api_tokens"][0]["name"] == "Skript von 42" and "digest" not in data["api_tokens"][0]
    assert data["admin_actions"][0]["object"] == "Betriebssysteme" and data["active_sessions"] == 1
    assert data["ai_notice"]["version"] == "v-42" and data["generation_requests"][0]["questions"] == 3
    assert data["open_answer_feedback_given"][0]["text"] == "Rückmeldung von 42"
    assert data["open_answer_feedback_received"][0]["ai_feedback"] == "KI sagt"
    exported = json.dumps(data, ensure_ascii=False)
    assert "von 43" not in exported and '"subject": "43"' not in exported  # nothing of the other person

    counts = privacy.delete_user_data(person.pk)
    assert counts["tutor.conversation"] == 1 and counts["tutor.message"] == 2 and counts["sessions.session"] == 1
    assert counts["lti.ltiuser"] == 1 and counts["courses.membership"] == 1 and counts["admin.logentry"] == 1
    assert rows_referring_to(person.pk) == {}
    assert QuestionSet.objects.filter(title="Fragen von 42", created_by=None).exists()  # stays with the course
    assert GenerationRun.objects.filter(title="Lauf von 42", created_by=None).exists()
    assert QuestionChange.objects.filter(user=None).count() == 1 and counts["courses.apitoken"] == 1
    assert counts["tutor.generationrequest"] == 1
    client = redis.Redis.from_url(settings.REDIS_URL)
    assert not client.exists(buffer_key(answer.pk), final_key(answer.pk))
    assert client.exists(buffer_key(other_answer.pk)) == 1
    assert set(rows_referring_to(other.pk)) == {t for t, _f in privacy.user_references()} - {"auth.user"}
    assert PersonSession.objects.count() == 1 and Feedback.objects.count() == 1 and Citation.objects.count() == 1


def test_the_commands_find_a_person_by_their_lms_identity():
    course = Course.objects.create(title="Netze")
    registration = a_registration()
    person, _answer = a_person_everywhere(course, registration, "s-1001")
    out = StringIO()
    call_command("export_user_data", "--issuer", "https://moodle.example.edu", "--sub", "s-1001", stdout=out)
    assert json.loads(out.getvalue())["account"]["username"] == person.username
    out = StringIO()
    call_command("export_user_data", person.username, stdout=out)
    assert json.loads(out.getvalue())["lti_identities"][0]["subject"] == "s-1001"
    with pytest.raises(CommandError, match="no account for issuer"):
        call_command("delete_user_data", "--issuer", "https://moodle.example.edu", "--sub", "nobody")
    with pytest.raises(CommandError, match="name the person"):
        call_command("delete_user_data")
    out = StringIO()
    call_command("delete_user_data", str(person.pk), stdout=out)
    assert "Deleted 1 conversations with 2 messages, and the account." in out.getvalue()
    assert "lti.ltiuser: 1" in out.getvalue() and not LtiUser.objects.exists()


def test_the_retention_run_deletes_what_is_past_its_time(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    course = Course.objects.create(title="Kurz")
    TutorConfig.objects.create(course=course, retention_days=7)
    user, launched = make_member(course)
    conversation = Conversation.objects.create(course=course, user=user)
    old = Message.objects.create(conversation=conversation, role=Message.USER, text="alt")
    Message.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=8))
    Message.objects.create(conversation=conversation, role=Message.USER, text="neu")
    expired, live = SessionStore(), SessionStore()
    for session in (expired, live):
        session["_auth_user_id"] = str(user.pk)
        session.create()
    PersonSession.objects.filter(pk=expired.session_key).update(expire_date=timezone.now() - timedelta(days=1))
    registration = a_registration("https://lms.example.edu")
    stale_nonce = UsedNonce.objects.create(registration=registration, nonce="old")
    UsedNonce.objects.filter(pk=stale_nonce.pk).update(used_at=timezone.now() - timedelta(days=2))
    UsedNonce.objects.create(registration=registration, nonce="fresh")
    kept = add_document(course, "skript.md", b"# Skript\n\nText.", enqueue=False)
    orphan, young = (settings.MEDIA_ROOT / "courses" / "999" / name for name in ("alt.pdf", "neu.pdf"))
    orphan.parent.mkdir(parents=True)
    for path in (orphan, young):
        path.write_bytes(b"%PDF-1.4")
    two_days_ago = time.time() - 2 * 86400
    os.utime(orphan, (two_days_ago, two_days_ago))

    counts = privacy.purge_expired_data()
    assert counts == {"messages": 1, "conversations": 0, "sessions": 1, "nonces": 1, "files": 1}
    assert list(Message.objects.values_list("text", flat=True)) == ["neu"]
    assert set(PersonSession.objects.values_list("pk", flat=True)) == {launched, live.session_key}
    assert list(UsedNonce.objects.values_list("nonce", flat=True)) == ["fresh"]
    assert not orphan.exists() and young.exists() and (settings.MEDIA_ROOT / kept.file.name).exists()
    out = StringIO()
    call_command("purge_expired_data", stdout=out)
    assert out.getvalue().strip() == "0 sessions, 0 nonces, 0 files, 0 messages, 0 conversations deleted."


def test_courses_nobody_used_for_long_are_listed_then_deleted_with_their_files(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    ended, running = Course.objects.create(title="WS 2021"), Course.objects.create(title="WS 2026")
    Course.objects.filter(pk=ended.pk).update(created_at=timezone.now() - timedelta(days=800))
    learner, _token = make_member(ended)
    Membership.objects.filter(course=ended).update(updated_at=timezone.now() - timedelta(days=750))
    document = add_document(ended, "skript.md", b"# Skript\n\nAlt.", enqueue=False)
    stored = settings.MEDIA_ROOT / document.file.name
    make_member(running)

    out = StringIO()
    call_command("purge_inactive_courses", "--inactive-days", "730", stdout=out)
    assert f"{ended.pk}\tWS 2021\t" in out.getvalue() and "WS 2026" not in out.getvalue()
    assert "Would delete (add --delete): 1 course(s)" in out.getvalue() and stored.exists()
    call_command("purge_inactive_courses", "--inactive-days", "730", "--delete", stdout=StringIO())
    assert list(Course.objects.values_list("title", flat=True)) == ["WS 2026"]
    assert not stored.exists() and not Document.objects.exists() and not Membership.objects.filter(user=learner)
    with pytest.raises(CommandError, match="at least 30"):
        call_command("purge_inactive_courses", "--inactive-days", "7")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("own_ingest_queue")  # a session worker started earlier must not take the run
def test_the_daily_retention_run_runs_on_an_ingest_worker(worker_env, tmp_path):
    """Beat's daily job goes to the ingest queue, and an ingest worker carries it out (its own worker: the session
    worker, which consumes every queue, would prove nothing about the route)."""
    from config.celery import app
    from config.tasks import purge_expired_data
    from tests.ops_support import private_ingest_worker

    route = app.amqp.router.route({}, "config.tasks.purge_expired_data", args=(), kwargs={})
    assert route["queue"].name == "ingest"  # where the uploaded files are mounted
    course = Course.objects.create(title="Täglich")
    user, _token = make_member(course)
    session = SessionStore()
    session["_auth_user_id"] = str(user.pk)
    session.create()
    PersonSession.objects.filter(pk=session.session_key).update(expire_date=timezone.now() - timedelta(minutes=1))
    with private_ingest_worker(worker_env, tmp_path / "worker.log"):
        purge_expired_data.delay()  # what Celery beat sends once a day (tests/test_config_periodic.py)
        deadline = time.monotonic() + 60
        while PersonSession.objects.filter(pk=session.session_key).exists() and time.monotonic() < deadline:
            time.sleep(0.2)
    assert not PersonSession.objects.filter(pk=session.session_key).exists(), (
        tmp_path / "worker.log").read_text()[-2000:]
    assert "config.tasks.purge_expired_data" in (tmp_path / "worker.log").read_text()
