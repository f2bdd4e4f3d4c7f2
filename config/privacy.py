"""A person's data across every app (export, erasure) and the retention of what outlives its use.

PERSONAL_TABLES names every table that refers to a person, with what an export shows of it and what erasure does;
tests/test_config_privacy.py walks the models and fails on a table with a user reference that is not listed here.
``purge_expired_data`` is the daily retention run: conversations past their course's retention
(tutor.chat.retention), expired sessions, used launch nonces, and stored files no document refers to any more.
docs/processing-record.md (German and English) describes what is stored, why, for how long and who sees it.
"""

import logging
import time
from datetime import timedelta
from importlib import import_module

from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

log = logging.getLogger(__name__)

# table (app_label.model) -> what it holds of the person; erasure removes it, or (SET_NULL) removes the reference
PERSONAL_TABLES = {
    "auth.user": "the pseudonymous account (a hash of platform and LTI subject), last login, staff flags",
    "auth.user_groups": "the account's groups (admin site)",
    "auth.user_user_permissions": "the account's permissions (admin site)",
    "admin.logentry": "changes the person made in the admin site",
    "lti.ltiuser": "the LMS's subject id and, only if the LMS shares it, the person's name",
    "courses.membership": "roles in courses (from launches and the roster sync)",
    "tutor.conversation": "chat conversations: questions, answers, their sources and feedback",
    "tutor.attempt": "practice attempts: chosen answers, scores, the state of the grade passback",
    "tutor.questionset": "question sets the person generated: kept for the course, the author reference removed",
    "tutor.generationrun": "whole-text question runs the person started: kept for the course, the author reference "
                           "removed",
    "tutor.generationrequest": "how many questions the person asked the model to generate, when, in which course "
                               "(their generation budget): deleted",
    "tutor.questionchange": "the person's changes to questions (review history): kept with the question, the author "
                            "reference removed",
    "tutor.openanswerfeedback": "feedback the person gave as a lecturer on students' open answers: kept for the "
                                "student, the reviewer reference removed (feedback on the person's own answers goes "
                                "with their attempts)",
    "tutor.ainoticeacceptance": "that and when the person accepted the AI-use notice, and which text",
    "courses.apitoken": "API tokens the person made (name, course, scope, dates; only a digest of the secret): "
                        "deleted, so they stop working",
    "courses.personsession": "sign-in sessions after launches (when, until when): deleted, so the person is signed out",
}
ORPHAN_FILE_GRACE = timedelta(days=1)  # an upload's file is written just before its document row is committed


def user_references():
    """Every (table, field) of the installed models that refers to an account, auto-created join tables included."""
    from django.apps import apps

    user_model = get_user_model()
    return sorted((model._meta.label_lower, field.name)
                  for model in apps.get_models(include_auto_created=True)
                  for field in model._meta.get_fields()
                  if field.concrete and field.is_relation and field.related_model is user_model)


class UnknownPerson(LookupError):
    """No account matches the given id, username or LMS identity."""


def find_user(identifier=None, *, issuer=None, sub=None):
    """The account by its numeric id or username, or by the LMS's issuer and subject (the id an admin is given)."""
    from lti.models import LtiUser

    users = get_user_model().objects
    try:
        if issuer or sub:  # each registration of the platform has its own link, all to the same account
            return LtiUser.objects.select_related("user").filter(registration__issuer=issuer, sub=sub)[:1].get().user
        if str(identifier).isdigit():
            return users.get(pk=int(identifier))
        return users.get(username=identifier)
    except (get_user_model().DoesNotExist, LtiUser.DoesNotExist):
        who = f"issuer {issuer!r} and subject {sub!r}" if issuer or sub else repr(identifier)
        raise UnknownPerson(f"no account for {who}") from None


def _session_model():
    """The model of the configured session engine (SESSION_ENGINE: courses.sessions)."""
    return import_module(settings.SESSION_ENGINE).SessionStore.get_model_class()


def _sessions_of(user_id):
    """The stored sessions logged in as this account (their data is signed, so each is decoded)."""
    return [s.pk for s in _session_model().objects.filter(expire_date__gt=timezone.now())
            if str(s.get_decoded().get("_auth_user_id")) == str(user_id)]


def export_user_data(user_id):
    """Everything stored about one person, as JSON-able data: account, LMS identities, roles, chats, practice."""
    from courses.models import ApiToken
    from lti.models import LtiUser
    from tutor.chat.models import AiNoticeAcceptance
    from tutor.chat.retention import export_user_data as export_chats
    from tutor.questions.models import (
        GenerationRequest,
        GenerationRun,
        OpenAnswerFeedback,
        QuestionChange,
        QuestionSet,
    )

    user = get_user_model().objects.get(pk=user_id)
    data = export_chats(user_id)
    data["account"] = {"username": user.username, "joined": user.date_joined.isoformat(),
                       "last_login": user.last_login.isoformat() if user.last_login else None,
                       "staff": user.is_staff, "superuser": user.is_superuser,
                       "groups": list(user.groups.values_list("name", flat=True)),
                       "permissions": list(user.user_permissions.values_list("codename", flat=True))}
    data["lti_identities"] = [{"platform": lti.registration.issuer, "subject": lti.sub, "name": lti.name}
                              for lti in LtiUser.objects.filter(user=user).select_related("registration")]
    data["memberships"] = [{"course_id": m.course_id, "course": m.course.title, "role": m.role,
                            "updated": m.updated_at.isoformat()}
                           for m in user.memberships.select_related("course").order_by("course_id")]
    data["question_sets_created"] = [{"course_id": s.course_id, "title": s.title,
                                      "created": s.created_at.isoformat()}
                                     for s in QuestionSet.objects.filter(created_by=user).order_by("created_at")]
    data["question_runs_started"] = [{"course_id": r.course_id, "title": r.title, "created": r.created_at.isoformat()}
                                     for r in GenerationRun.objects.filter(created_by=user).order_by("created_at")]
    data["generation_requests"] = [{"course_id": g.course_id, "questions": g.items, "at": g.created_at.isoformat()}
                                   for g in GenerationRequest.objects.filter(user=user).order_by("created_at")]
    data["question_changes"] = [{"course_id": c.question.question_set.course_id, "question_id": c.question_id,
                                 "action": c.action, "changes": c.changes, "at": c.at.isoformat()}
                                for c in QuestionChange.objects.filter(user=user)
                                .select_related("question__question_set").order_by("at", "id")]
    data["open_answer_feedback_given"] = [
        {"course_id": f.attempt.question_set.course_id, "question_id": f.question_id, "text": f.lecturer_text,
         "credit": f.lecturer_credit, "at": f.overridden_at.isoformat() if f.overridden_at else None}
        for f in OpenAnswerFeedback.objects.filter(overridden_by=user).select_related("attempt__question_set")
        .order_by("overridden_at", "id")]
    data["open_answer_feedback_received"] = [
        {"course_id": f.attempt.question_set.course_id, "question_id": f.question_id, "ai_feedback": f.ai_text,
         "lecturer_feedback": f.lecturer_text, "credit": f.lecturer_credit if f.lecturer_credit is not None
         else f.ai_credit}
        for f in OpenAnswerFeedback.objects.filter(attempt__user=user).select_related("attempt__question_set")
        .order_by("created_at", "id")]
    data["api_tokens"] = [{"name": t.name, "course_id": t.course_id, "scope": t.scope, "begins_with": t.hint,
                           "created": t.created_at.isoformat(), "expires": t.expires_at.isoformat(),
                           "revoked": t.revoked_at.isoformat() if t.revoked_at else None,
                           "last_used": t.last_used_at.isoformat() if t.last_used_at else None}
                          for t in ApiToken.objects.filter(user=user).order_by("created_at")]
    data["admin_actions"] = [{"time": e.action_time.isoformat(), "object": e.object_repr,
                              "change": e.get_change_message()}
                             for e in LogEntry.objects.filter(user=user).order_by("action_time")]
    accepted = AiNoticeAcceptance.objects.filter(user=user).first()
    data["ai_notice"] = ({"version": accepted.version, "accepted": accepted.accepted_at.isoformat()}
                         if accepted else None)
    data["active_sessions"] = len(_sessions_of(user_id))
    return data


def delete_user_data(user_id):
    """Erase one person: chats and practice (tutor.chat.retention), live chat buffers in Redis, sessions, and the account
    with its LMS identities, roles, API tokens and admin log (the database cascades); question sets and whole-text
    runs they generated and their changes to questions stay with the course without the author. Returns the number of rows deleted per table."""
    from tutor.chat.models import Message
    from tutor.chat.retention import delete_user_data as delete_chats

    user = get_user_model().objects.get(pk=user_id)
    message_ids = list(Message.objects.filter(conversation__user=user).values_list("pk", flat=True))
    sessions = _sessions_of(user_id)
    with transaction.atomic():
        chats = delete_chats(user_id)
        _session_model().objects.filter(pk__in=sessions).delete()
        _count, by_table = user.delete()
    forget_chat_buffers(message_ids)
    counts = {label.lower(): n for label, n in by_table.items() if n}
    counts.update({"tutor.conversation": chats["conversations"], "tutor.message": chats["messages"],
                   "tutor.attempt": chats["attempts"], "sessions.session": len(sessions)})
    log.info("erased user %s: %s", user_id, counts)
    return {table: n for table, n in counts.items() if n}


def forget_chat_buffers(message_ids):
    """Delete the Redis copies of answers (streamed text and final message, otherwise kept an hour)."""
    if not message_ids:
        return 0
    import redis

    from tutor.chat.stream import buffer_key, final_key

    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=10)
    try:
        return client.delete(*[key for pk in message_ids for key in (buffer_key(pk), final_key(pk))])
    finally:
        client.close()


# --- Retention ----------------------------------------------------------------------------------------------------

def purge_orphan_files(now=None):
    """Delete stored course files that no document refers to any more (left by a deleted course or document);
    files younger than a day are left alone (an upload in progress). Returns their names."""
    from courses.models import Document

    now = now or time.time()
    referenced = set(Document.objects.values_list("file", flat=True))
    removed = []
    for name in _stored_files("courses"):
        if name in referenced:
            continue
        if now - default_storage.get_modified_time(name).timestamp() < ORPHAN_FILE_GRACE.total_seconds():
            continue
        default_storage.delete(name)
        removed.append(name)
    if removed:
        log.info("deleted %d stored files that no document refers to", len(removed))
    return removed


def _stored_files(folder):
    if not default_storage.exists(folder):
        return
    directories, files = default_storage.listdir(folder)
    for name in files:
        yield f"{folder}/{name}"
    for directory in directories:
        yield from _stored_files(f"{folder}/{directory}")


def purge_expired_data():
    """The daily retention run; returns what it deleted, per kind."""
    from lti.launch import prune_nonces
    from tutor.chat.retention import purge_conversations

    conversations = purge_conversations()
    sessions, _ = _session_model().objects.filter(expire_date__lt=timezone.now()).delete()
    return {"messages": conversations["messages"], "conversations": conversations["conversations"],
            "sessions": sessions, "nonces": prune_nonces(), "files": len(purge_orphan_files())}


def inactive_courses(days, now=None):
    """Courses nobody launched for `days` days (no role refreshed, no LTI context updated, no chat), oldest first.

    The LMS does not tell the tool when a course ends; the last launch is the sign that it did. One query: the
    latest change of each relation is a subquery on its own (course) index, not a Max() over their joined product."""
    from django.db.models import DateTimeField, OuterRef, Subquery
    from django.db.models.functions import Coalesce, Greatest

    from courses.models import Course

    def latest(relation):
        model = Course._meta.get_field(relation).related_model
        column = model._meta.get_field("course").attname
        rows = model.objects.filter(**{column: OuterRef("pk")}).order_by().values(column)
        return Coalesce(Subquery(rows.annotate(last=Max("updated_at")).values("last")[:1],
                                 output_field=DateTimeField()), "created_at")

    cutoff = (now or timezone.now()) - timedelta(days=days)
    return list(Course.objects.annotate(last_seen=Greatest("created_at", latest("memberships"),
                                                           latest("lti_contexts"), latest("conversations")))
                .filter(last_seen__lt=cutoff).order_by("created_at"))


def delete_course(course):
    """Delete a course with everything in it (texts and their files, index, chats, question sets, roles)."""
    from courses.models import Document

    course_id, names = course.pk, list(Document.objects.filter(course=course).values_list("file", flat=True))
    course.delete()
    for name in names:
        if name and not Document.objects.filter(file=name).exists():
            default_storage.delete(name)
    log.info("deleted course %s (%s) with %d stored files", course_id, course.title, len(names))
