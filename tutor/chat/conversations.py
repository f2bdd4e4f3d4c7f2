"""Taking a question: the person's conversations, the rate limit, a question stored with its pending answer and
queued for the chat worker (tutor.chat.answering), and the retry of a failed answer."""

import logging

import redis
from django.conf import settings
from django.db import models, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from config import ratelimit
from config.errors import ProblemError
from tutor.chat import quotas, stream
from tutor.chat.models import Citation, Conversation, Message

log = logging.getLogger(__name__)


class ChatError(ProblemError):
    """A question that cannot be taken; the message is meant for the person."""


class RateLimited(ChatError):
    """The person asked too many questions in a short time (the API answers 429 with Retry-After)."""

    status = 429
    code = "throttled"

    @property
    def retry_after(self):
        """The rate window: by then a question may be asked again."""
        return settings.CHAT_RATE_WINDOW


class QuotaExceeded(RateLimited):
    """The person asked all the questions of their day's or week's budget in this course (tutor.chat.quotas)."""


def check_rate_limit(user_id):
    """Count one question of this person; RateLimited when over settings.CHAT_RATE_LIMIT in the last
    CHAT_RATE_WINDOW seconds (config.ratelimit, the limiter of the API's throttle too; refused ones do not count)."""
    allowed, _wait = ratelimit.hit(f"question:user-{user_id}", settings.CHAT_RATE_LIMIT, settings.CHAT_RATE_WINDOW)
    if not allowed:
        log.info("rate limit reached for user %s", user_id)
        raise RateLimited(_("You have asked a lot of questions in a short time. Please wait a minute, "
                            "then ask again."))


def conversation_for(course, user, *, new=False, conversation_id=None):
    """The person's conversation in the course: the one asked for by id (only their own), else the latest;
    a new one when asked or when there is none. An id that is not theirs raises ChatError."""
    mine = Conversation.objects.filter(course=course, user=user)
    if conversation_id:
        found = mine.filter(pk=conversation_id).first()
        if found is None:
            raise ChatError(_("This conversation does not belong to you."))
        return found
    if not new:
        found = mine.first()
        if found:
            return found
    return Conversation.objects.create(course=course, user=user)


def titled_conversations(course, user):
    """The person's conversations in the course that hold a question, newest first, each with ``title`` (its first
    question)."""
    first_question = Message.objects.filter(conversation=models.OuterRef("pk"), role=Message.USER).order_by("pk")
    return (Conversation.objects.filter(course=course, user=user)
            .annotate(title=models.Subquery(first_question.values("text")[:1])).exclude(title=None))


def conversation_list(course, user, limit=30):
    """The person's conversations in the course, newest first, each titled by its first question."""
    rows = titled_conversations(course, user).values("pk", "title", "updated_at")[:limit]
    return [{"id": r["pk"], "title": r["title"][:80], "updated_at": r["updated_at"]} for r in rows]


def retry(course, user, message_id):
    """Answer a failed answer again (same question, same place in the conversation); returns the answer.

    Only the person's own failed answers can be retried; a retry counts against the rate limit.
    """
    from tutor.chat.tasks import chat_answer

    answer = Message.objects.filter(pk=message_id, role=Message.ASSISTANT, conversation__course=course,
                                    conversation__user=user).select_related("conversation").first()
    if answer is None:
        raise ChatError(_("This answer does not exist."))
    if answer.status != Message.FAILED:
        raise ChatError(_("Only an answer that failed can be tried again."))
    check_rate_limit(user.pk)
    try:  # before the answer is queued again: its new pieces must not be deleted
        stream.redis_client().delete(stream.buffer_key(answer.pk), stream.final_key(answer.pk))
    except redis.RedisError:
        log.exception("could not clear the stream buffer of answer %s", answer.pk)
    with transaction.atomic():
        changed = Message.objects.filter(pk=answer.pk, status=Message.FAILED).update(
            status=Message.PENDING, error="", text="", finished_at=None)
        if changed:
            Citation.objects.filter(message=answer).delete()
            language = translation.get_language()
            transaction.on_commit(lambda: chat_answer.delay(answer.pk, language))
    answer.refresh_from_db()
    return answer


def ask(course, user, text, *, conversation=None):
    """Store the question and a pending answer, queue the answer on the chat queue; returns (question, answer)."""
    from tutor.chat.tasks import chat_answer

    text = (text or "").strip()
    if not text:
        raise ChatError(_("Please type a question."))
    if len(text) > settings.CHAT_MAX_QUESTION_CHARS:
        raise ChatError(_("Your question is too long (at most %(limit)d characters).")
                        % {"limit": settings.CHAT_MAX_QUESTION_CHARS})
    if conversation is not None and (conversation.course_id != course.pk or conversation.user_id != user.pk):
        raise ChatError(_("This conversation does not belong to you."))
    refused = quotas.refusal(course, user)
    if refused:
        raise QuotaExceeded(refused)
    check_rate_limit(user.pk)
    conversation = conversation or conversation_for(course, user)
    # one INSERT for both (atomic by itself), queued as soon as it is committed: the answer's time to its first
    # token starts here
    question, answer = Message.objects.bulk_create([
        Message(conversation=conversation, role=Message.USER, text=text),
        Message(conversation=conversation, role=Message.ASSISTANT, status=Message.PENDING)])
    language = translation.get_language()  # of the page asked on: the answer's when the question is too short to tell
    transaction.on_commit(lambda: chat_answer.delay(answer.pk, language))
    Conversation.objects.filter(pk=conversation.pk).update(updated_at=timezone.now())
    return question, answer


def ask_in(course, user, text, *, conversation_id=None, new=False):
    """Take a question into the conversation a client names: a new one (new), the person's own one by id
    (conversation_id; another's raises ChatError), or else their latest; returns (question, answer) as ask does."""
    conversation = None
    if new:
        conversation = conversation_for(course, user, new=True)
    elif conversation_id is not None:
        conversation = conversation_for(course, user, conversation_id=conversation_id or -1)
    return ask(course, user, text, conversation=conversation)
