"""Privacy of the tutor's data: delete chats older than each course's retention, export or delete one person's chats
and practice, and the tutor's part of config.privacy (a person's export and erasure, the daily retention run)."""

import logging
from datetime import timedelta

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


# --- The tutor's part of a person's data and of retention, registered with config.privacy ----------------------

TABLES = {
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
}


def export_person(user):
    """The tutor's part of a person's export: chats, practice, the question sets, runs and changes they made,
    open-answer feedback given and received, and their acceptance of the AI-use notice."""
    from tutor.chat.models import AiNoticeAcceptance
    from tutor.questions.models import GenerationRequest, GenerationRun, OpenAnswerFeedback, QuestionSet

    data = export_user_data(user.pk)
    del data["user_id"], data["exported_at"]  # the export's own (config.privacy)
    data["question_changes"] = [{"course_id": c.question.question_set.course_id, "question_id": c.question_id,
                                 "action": c.action, "changes": c.changes, "at": c.at.isoformat()}
                                for c in QuestionChange.objects.filter(user=user)
                                .select_related("question__question_set").order_by("at", "id")]
    data["question_sets_created"] = [{"course_id": s.course_id, "title": s.title,
                                      "created": s.created_at.isoformat()}
                                     for s in QuestionSet.objects.filter(created_by=user).order_by("created_at")]
    data["question_runs_started"] = [{"course_id": r.course_id, "title": r.title, "created": r.created_at.isoformat()}
                                     for r in GenerationRun.objects.filter(created_by=user).order_by("created_at")]
    data["generation_requests"] = [{"course_id": g.course_id, "questions": g.items, "at": g.created_at.isoformat()}
                                   for g in GenerationRequest.objects.filter(user=user).order_by("created_at")]
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
    accepted = AiNoticeAcceptance.objects.filter(user=user).first()
    data["ai_notice"] = ({"version": accepted.version, "accepted": accepted.accepted_at.isoformat()}
                         if accepted else None)
    return data


def erase_person(user):
    """The tutor's part of a person's erasure (inside its transaction): chats and practice; once committed, the
    Redis copies of their answers."""
    from config.privacy import Erased

    message_ids = list(Message.objects.filter(conversation__user=user).values_list("pk", flat=True))
    chats = delete_user_data(user.pk)
    return Erased({"tutor.conversation": chats["conversations"], "tutor.message": chats["messages"],
                   "tutor.attempt": chats["attempts"]}, after=lambda: forget_chat_buffers(message_ids))


def forget_chat_buffers(message_ids):
    """Delete the Redis copies of answers (streamed text and final message, otherwise kept an hour)."""
    if not message_ids:
        return 0
    import redis
    from django.conf import settings

    from tutor.chat.stream import buffer_key, final_key

    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=10)
    try:
        return client.delete(*[key for pk in message_ids for key in (buffer_key(pk), final_key(pk))])
    finally:
        client.close()


def register():
    """Register the tutor's part with config.privacy (called from TutorAppConfig.ready())."""
    from config import privacy

    privacy.register_person_data(TABLES, export=export_person, erase=erase_person)
    privacy.register_retention(purge_conversations)
