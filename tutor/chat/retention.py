"""Privacy of chat data: delete what is older than each course's retention, export or delete one person's data."""

import logging
from datetime import timedelta

from django.core.cache import cache
from django.db.models import Count
from django.utils import timezone

from tutor.chat.models import Conversation, Feedback, Message
from tutor.models import TutorConfig
from tutor.questions.models import Attempt, QuestionChange

log = logging.getLogger(__name__)
DEFAULT_RETENTION_DAYS = TutorConfig._meta.get_field("retention_days").default


def purge_conversations(now=None):
    """Delete messages older than their course's retention days, then empty conversations; returns counts."""
    now = now or timezone.now()
    retention = dict(TutorConfig.objects.values_list("course_id", "retention_days"))
    course_ids = set(Conversation.objects.values_list("course_id", flat=True).distinct())
    messages = 0
    for course_id in course_ids:
        cutoff = now - timedelta(days=retention.get(course_id, DEFAULT_RETENTION_DAYS))
        deleted, by_model = Message.objects.filter(conversation__course_id=course_id, created_at__lt=cutoff).delete()
        messages += by_model.get("tutor.Message", 0)
    empty = Conversation.objects.annotate(n=Count("messages")).filter(n=0, updated_at__lt=now - timedelta(hours=1))
    conversations, _ = empty.delete()
    log.info("purged %d messages and %d empty conversations", messages, conversations)
    return {"messages": messages, "conversations": conversations}


def export_user_data(user_id):
    """Everything the tutor stores about one person's chats, as plain JSON-able data."""
    conversations = (Conversation.objects.filter(user_id=user_id).select_related("course")
                     .prefetch_related("messages__citations").order_by("created_at"))
    feedback = {f.message_id: f for f in Feedback.objects.filter(message__conversation__user_id=user_id)}
    out = []
    for conversation in conversations:
        out.append({
            "course": conversation.course.title,
            "course_id": conversation.course_id,
            "started": conversation.created_at.isoformat(),
            "messages": [{
                "role": m.role, "text": m.text, "status": m.status, "time": m.created_at.isoformat(),
                "sources": [{"number": c.number, "document": c.document_title, "section": c.section_path,
                             "page": c.page} for c in m.citations.all()],
                "feedback": ({"rating": feedback[m.pk].rating, "comment": feedback[m.pk].comment}
                             if m.pk in feedback else None),
            } for m in conversation.messages.all()],
        })
    attempts = [{"course_id": a.question_set.course_id, "question_set": a.question_set.title, "answers": a.answers,
                 "credits": a.credits, "score": a.score, "max_score": a.max_score, "submitted": a.submitted_at.isoformat(),
                 "gradebook": a.grade_status}
                for a in Attempt.objects.filter(user_id=user_id).select_related("question_set").order_by("submitted_at")]
    changes = [{"course_id": c.question.question_set.course_id, "question_set": c.question.question_set.title,
                "question": c.question_id, "action": c.action, "time": c.at.isoformat()}
               for c in QuestionChange.objects.filter(user_id=user_id).select_related("question__question_set")
               .order_by("at")]
    return {"user_id": user_id, "exported_at": timezone.now().isoformat(), "conversations": out,
            "practice_attempts": attempts, "question_changes": changes}


def delete_user_data(user_id):
    """Delete every conversation of one person (messages, sources and feedback with them); returns the count."""
    deleted, by_model = Conversation.objects.filter(user_id=user_id).delete()
    attempts, _by_model = Attempt.objects.filter(user_id=user_id).delete()
    QuestionChange.objects.filter(user_id=user_id).update(user=None)  # the history stays, without the person
    log.info("deleted the chat data of user %s: %s and %d practice attempts", user_id, by_model, attempts)
    return {"conversations": by_model.get("tutor.Conversation", 0), "messages": by_model.get("tutor.Message", 0),
            "attempts": attempts}


_purge_checked = {"day": None}


def schedule_daily_purge():
    """Queue the retention purge at most once a day, from whichever chat worker answers first (each process
    asks Redis once a day, not once per answer)."""
    from tutor.chat.tasks import chat_purge_conversations

    today = timezone.now().date().isoformat()
    if _purge_checked["day"] == today:
        return
    try:
        if cache.add(f"tutor:purge:{today}", 1, timeout=2 * 86400):
            chat_purge_conversations.delay()
        _purge_checked["day"] = today
    except Exception:
        log.exception("could not schedule the daily purge")
