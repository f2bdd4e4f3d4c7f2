"""The chat: a question becomes a pending answer that a chat worker grounds in the course texts and streams.

``ask`` (web process) stores the question and a pending answer and queues ``tutor.tasks.chat_answer``.
``answer`` (chat worker) rewrites follow-ups for retrieval, retrieves from this course only, declines when
nothing relevant is found, otherwise streams the model's answer: every piece is appended to a Redis
buffer and published on the message's channel; the final text and citations are saved to PostgreSQL.
The web process relays the channel as server-sent events (see tutor.views.stream).
"""

import json
import logging
import re
import time

import redis
from django.conf import settings
from django.core.cache import cache
from django.db import models, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from courses.parsing import detect_language
from courses.retrieval import course_documents, retrieve
from tutor.inference import InferenceBadResponse, InferenceClient, InferenceError, InferenceUnavailable
from tutor.models import Citation, Conversation, Message, TutorConfig
from tutor.prompts import ANSWER_TOKENS, HISTORY_TURNS, fitted_messages, search_query, without_delimiters
from tutor.rendering import render_markdown

log = logging.getLogger(__name__)

BUFFER_SECONDS = 3600
ERRORS = {
    "unavailable": gettext_lazy("The tutor's language model is not reachable right now. Your question is saved; "
                                "please try again in a few minutes."),
    "bad_response": gettext_lazy("The tutor's language model could not answer this question. Please try again "
                                 "or ask it differently."),
    "timeout": gettext_lazy("The answer took too long. Your question is saved; please try again."),
    "internal": gettext_lazy("Something went wrong while answering. Your question is saved; please try again."),
}


class ChatError(ValueError):
    """A question that cannot be taken; the message is meant for the person."""


class RateLimited(ChatError):
    """The person asked too many questions in a short time."""


def error_text(code):
    """The person-readable, translated text for an answer's error code."""
    return str(ERRORS.get(code, ERRORS["internal"]))


def channel(message_id):
    """The Redis pub/sub channel an answer's pieces are published on."""
    return f"tutor:chat:{message_id}"


def buffer_key(message_id):
    """The Redis key holding the answer text streamed so far (for reconnecting browsers)."""
    return f"tutor:chat:{message_id}:text"


def final_key(message_id):
    """The Redis key holding a finished answer's payload (see message_payload) for BUFFER_SECONDS."""
    return f"tutor:chat:{message_id}:final"


_redis = None


def redis_client():
    """This process's Redis client for publishing (created on first use, after any fork)."""
    global _redis
    if _redis is None:
        _redis = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=10)
    return _redis


# --- Web side: taking a question --------------------------------------------------------------------

def check_rate_limit(user_id):
    """Count one question of this person; RateLimited when over settings.CHAT_RATE_LIMIT per window."""
    window = settings.CHAT_RATE_WINDOW
    key = f"tutor:rate:{user_id}:{int(timezone.now().timestamp()) // window}"
    # one Redis round trip for the window's first question (add), two only after it (add fails, incr)
    count = 1 if cache.add(key, 1, timeout=window + 5) else cache.incr(key)
    if count > settings.CHAT_RATE_LIMIT:
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


def conversation_list(course, user, limit=30):
    """The person's conversations in the course, newest first, each titled by its first question."""
    first_question = Message.objects.filter(conversation=models.OuterRef("pk"), role=Message.USER).order_by("pk")
    rows = (Conversation.objects.filter(course=course, user=user)
            .annotate(title=models.Subquery(first_question.values("text")[:1]))
            .exclude(title=None).values("pk", "title", "updated_at")[:limit])
    return [{"id": r["pk"], "title": r["title"][:80], "updated_at": r["updated_at"]} for r in rows]


def retry(course, user, message_id):
    """Answer a failed answer again (same question, same place in the conversation); returns the answer.

    Only the person's own failed answers can be retried; a retry counts against the rate limit.
    """
    from tutor.tasks import chat_answer

    answer = Message.objects.filter(pk=message_id, role=Message.ASSISTANT, conversation__course=course,
                                    conversation__user=user).select_related("conversation").first()
    if answer is None:
        raise ChatError(_("This answer does not exist."))
    if answer.status != Message.FAILED:
        raise ChatError(_("Only an answer that failed can be tried again."))
    check_rate_limit(user.pk)
    try:  # before the answer is queued again: its new pieces must not be deleted
        redis_client().delete(buffer_key(answer.pk), final_key(answer.pk))
    except redis.RedisError:
        log.exception("could not clear the stream buffer of answer %s", answer.pk)
    with transaction.atomic():
        changed = Message.objects.filter(pk=answer.pk, status=Message.FAILED).update(
            status=Message.PENDING, error="", text="", finished_at=None)
        if changed:
            Citation.objects.filter(message=answer).delete()
            transaction.on_commit(lambda: chat_answer.delay(answer.pk))
    answer.refresh_from_db()
    return answer


def ask(course, user, text, *, conversation=None):
    """Store the question and a pending answer, queue the answer on the chat queue; returns (question, answer)."""
    from tutor.tasks import chat_answer

    text = (text or "").strip()
    if not text:
        raise ChatError(_("Please type a question."))
    if len(text) > settings.CHAT_MAX_QUESTION_CHARS:
        raise ChatError(_("Your question is too long (at most %(limit)d characters).")
                        % {"limit": settings.CHAT_MAX_QUESTION_CHARS})
    if conversation is not None and (conversation.course_id != course.pk or conversation.user_id != user.pk):
        raise ChatError(_("This conversation does not belong to you."))
    check_rate_limit(user.pk)
    conversation = conversation or conversation_for(course, user)
    # one INSERT for both (atomic by itself), queued as soon as it is committed: the answer's time to its first
    # token starts here
    question, answer = Message.objects.bulk_create([
        Message(conversation=conversation, role=Message.USER, text=text),
        Message(conversation=conversation, role=Message.ASSISTANT, status=Message.PENDING)])
    transaction.on_commit(lambda: chat_answer.delay(answer.pk))
    Conversation.objects.filter(pk=conversation.pk).update(updated_at=timezone.now())
    return question, answer


def message_payload(message, launch_token=""):
    """What the page shows of a message: sanitized HTML, numbered sources with links, state, error text."""
    citations = list(message.citations.all()) if message.role == Message.ASSISTANT else []
    return payload(message, citations, launch_token)


def payload(message, citations, launch_token=""):
    """message_payload for a message whose citations are at hand (the chat worker has just written them)."""
    from courses.access import tool_url

    course_id = message.conversation.course_id
    urls = {c.number: tool_url("courses:passage", course_id, c.chunk_id, token=launch_token) for c in citations}
    if message.role == Message.USER:
        html = render_markdown(message.text)
    else:
        html = render_markdown(message.text, urls)
    failed = message.status == Message.FAILED
    return {
        "id": message.pk, "role": message.role, "status": message.status, "html": html,
        "declined": message.declined,
        "error": error_text(message.error) if failed else "", "error_code": message.error if failed else "",
        "citations": [{"number": c.number, "title": c.document_title, "section": c.section_path, "page": c.page,
                       "url": urls[c.number], "cited": c.cited} for c in citations],
    }


# --- Worker side: answering -----------------------------------------------------------------------

class _Publisher:
    """Appends answer pieces to the Redis buffer and publishes them with their end offset."""

    def __init__(self, message_id):
        self.message_id = message_id
        self.client = redis_client()
        self.length = 0
        self.text = []

    def reset(self):
        self.client.delete(buffer_key(self.message_id), final_key(self.message_id))
        self._publish({"t": "reset"})

    def piece(self, text):
        self.text.append(text)
        self.length += len(text)
        pipe = self.client.pipeline(transaction=False)
        if len(self.text) == 1:  # the first piece replaces whatever an interrupted earlier run left
            pipe.set(buffer_key(self.message_id), text.encode(), ex=BUFFER_SECONDS)
        else:  # APPEND keeps the key's expiry
            pipe.append(buffer_key(self.message_id), text.encode())
        pipe.publish(channel(self.message_id), json.dumps({"t": "delta", "text": text, "end": self.length}))
        pipe.execute()

    def finish(self, status, message=None, citations=()):
        """Publish the end of the answer; with the finished message, also its final payload (the web relays it
        without reading the database) and keep that beside the buffer for a stream opened after the end."""
        event = {"t": "end", "status": status}
        if message is not None:
            from courses.access import make_launch_token

            event["message"] = payload(message, list(citations),
                                       make_launch_token(message.conversation.user_id, message.conversation.course_id))
        try:
            pipe = self.client.pipeline(transaction=False)
            if message is not None:
                pipe.set(final_key(self.message_id), json.dumps(event["message"]), ex=BUFFER_SECONDS)
            pipe.publish(channel(self.message_id), json.dumps(event))
            pipe.execute()
        except redis.RedisError:
            log.exception("could not publish to %s", channel(self.message_id))

    def _publish(self, event):
        try:
            self.client.publish(channel(self.message_id), json.dumps(event))
        except redis.RedisError:
            log.exception("could not publish to %s", channel(self.message_id))


def answer_language(config, question, course):
    """The language the answer is written in: the configured one, or the question's."""
    if config.answer_language in (TutorConfig.GERMAN, TutorConfig.ENGLISH):
        return config.answer_language
    words = re.findall(r"\w+", question)
    return detect_language(question) if len(words) >= 3 else (course.language or "de")[:2]


def content_words(text):
    """The words of a text that carry meaning (no stop words, at least 3 letters), lower-cased."""
    from tutor.usage import STOPWORDS

    return {w for w in re.findall(r"[^\W_]{3,}", text.lower()) if w not in STOPWORDS}


def shares_content_words(query, passage_text):
    """Whether a passage uses one of the query's content words (or its stem: first five letters, or the
    word inside a compound such as "Prozessnummer")."""
    text = passage_text.lower()
    for word in content_words(query):
        if re.search(r"(?<![^\W_])" + re.escape(word[:5]), text) or (len(word) >= 6 and word in text):
            return True
    return False


def relevant_passages(course_id, query, k):
    """The course's passages for the query that are relevant: they share a content word with the question
    (the model never gets passages that only look similar as vectors) and, when settings.CHAT_MIN_RELEVANCE
    is set, reach that hybrid retrieval score."""
    threshold = settings.CHAT_MIN_RELEVANCE
    return [p for p in retrieve(course_id, query, k=k)
            if shares_content_words(query, p.document_title + " " + p.section_path + " " + p.text)
            and (threshold is None or p.score >= threshold)]


def declined_text(course_id, language):
    """What the tutor says when the course texts do not cover a question, naming the texts searched."""
    titles = course_documents(course_id)
    with translation.override(language):
        if not titles:
            return _("This course has no texts yet that I could search, so I cannot answer this question. "
                     "Please ask your teacher.")
        listing = "\n".join(f"- {title}" for title in titles)
        return _("I could not find anything about this in the course texts, so I would rather not guess. "
                 "I searched:\n\n%(titles)s\n\nPlease rephrase the question or ask your teacher.") % {
            "titles": listing}


def _conversation_so_far(message_id):
    """(the answer with its conversation, course and tutor settings; the conversation's latest messages before
    it, oldest first), in one query: ids grow with time, and the prompt uses only the last HISTORY_TURNS turns,
    so a long conversation costs no more than a short one."""
    message_id = int(message_id)
    rows = list(Message.objects.select_related("conversation__course__tutor_config")
                .filter(conversation_id=models.Subquery(Message.objects.filter(pk=message_id)
                                                        .values("conversation_id")[:1]),
                        pk__lte=message_id)
                .order_by("-id")[:2 * HISTORY_TURNS + 2])  # the answer, its question, the turns before
    rows.reverse()
    message = next((m for m in rows if m.pk == message_id), None)
    return message, [m for m in rows if m.pk != message_id]


def _history(answer, earlier):
    """Earlier finished turns of the conversation, oldest first, and the question being answered."""
    question = next((m for m in reversed(earlier) if m.role == Message.USER), None)
    turns = [{"role": m.role, "content": m.text} for m in earlier
             if m is not question and m.text and (m.role == Message.USER or m.status == Message.DONE)]
    return question, turns


def _cited_numbers(text):
    return {int(n) for n in re.findall(r"\[(\d{1,2})\]", text)}


def answer(message_id):
    """Produce one answer (idempotent: a finished answer is left alone, a half-streamed one starts over).

    Whatever goes wrong, the answer ends as "failed" with a reason the person can read; the question stays.
    """
    try:
        _answer(message_id)
    except BaseException:
        log.exception("answer %s crashed", message_id)
        code = "timeout" if _is_time_limit() else "internal"
        if fail_if_unfinished(message_id, code):
            failed = Message.objects.select_related("conversation").filter(pk=message_id).first()
            _Publisher(message_id).finish(Message.FAILED, failed)
        raise


def _is_time_limit():
    import sys

    from celery.exceptions import SoftTimeLimitExceeded

    return isinstance(sys.exc_info()[1], SoftTimeLimitExceeded)


def _answer(message_id):
    started = time.monotonic()
    message, earlier = _conversation_so_far(message_id)
    if message is None or message.role != Message.ASSISTANT or message.finished:
        return
    course = message.conversation.course
    config = TutorConfig.for_course(course)
    publisher = _Publisher(message_id)
    if message.status == Message.STREAMING:  # an earlier run streamed part of it and died: start over
        publisher.reset()
        message.citations.all().delete()
    question, turns = _history(message, earlier)
    if question is None:
        return _fail(message, publisher, "internal")
    language = answer_language(config, question.text, course)
    earlier_questions = [t["content"] for t in turns if t["role"] == Message.USER]
    query = search_query(question.text, earlier_questions)
    try:
        passages = relevant_passages(course.pk, query, config.sources)
    except Exception:
        log.exception("retrieval failed for message %s", message_id)
        return _fail(message, publisher, "internal")
    if not passages:
        text = declined_text(course.pk, language)
        publisher.piece(text)
        return _finish(message, publisher, text, [], query=query, declined=True)
    retrieved = time.monotonic()
    try:
        client = InferenceClient.from_settings(url=config.endpoint or None, model=config.model or None,
                                               timeout=config.timeout_seconds)
        messages, passages = fitted_messages(client, config, question.text, passages, turns, language=language)
        deadline = started + settings.CHAT_ANSWER_SECONDS
        for piece in client.stream_chat(messages, temperature=config.temperature, max_tokens=ANSWER_TOKENS):
            if time.monotonic() > deadline:  # ending the loop closes the model's stream
                log.warning("answer %s: still streaming after %s s; stopped", message_id, settings.CHAT_ANSWER_SECONDS)
                return _fail(message, publisher, "timeout", "".join(publisher.text))
            publisher.piece(piece)
            if len(publisher.text) == 1:  # marked after the first piece is out, not before it
                Message.objects.filter(pk=message_id).update(status=Message.STREAMING)
                log.info("answer %s: first piece after %.0f ms (retrieval and prompt %.0f ms)", message_id,
                         (time.monotonic() - started) * 1000, (retrieved - started) * 1000)
    except InferenceUnavailable as exc:
        log.warning("answer %s failed: %s", message_id, exc.reason)
        return _fail(message, publisher, "unavailable", "".join(publisher.text))
    except InferenceBadResponse as exc:
        log.warning("answer %s failed: %s", message_id, exc.reason)
        return _fail(message, publisher, "bad_response", "".join(publisher.text))
    except InferenceError:
        return _fail(message, publisher, "unavailable", "".join(publisher.text))
    text = without_delimiters("".join(publisher.text))
    if not text:
        return _fail(message, publisher, "bad_response")
    return _finish(message, publisher, text, passages, query=query)


def _finish(message, publisher, text, passages, *, query, declined=False):
    cited = _cited_numbers(text)
    citations = [Citation(message=message, number=i, chunk_id=p.chunk_id, document_title=p.document_title[:255],
                          section_path=p.section_path, page=p.page, excerpt=p.text[:500], score=p.score,
                          cited=i in cited)
                 for i, p in enumerate(passages, start=1)]
    with transaction.atomic():
        Citation.objects.filter(message=message).delete()
        Citation.objects.bulk_create(citations)
        _save(message, text=text, status=Message.DONE, error="", declined=declined, search_query=query[:2000],
              finished_at=timezone.now())
    publisher.finish(Message.DONE, message, citations)
    _schedule_daily_purge()


def _fail(message, publisher, code, partial=""):
    _save(message, status=Message.FAILED, error=code, text=partial, finished_at=timezone.now())
    publisher.finish(Message.FAILED, message)


def _save(message, **fields):
    """Write these fields of the message (an UPDATE: nothing if it was deleted meanwhile) and keep them on it,
    for the final payload."""
    Message.objects.filter(pk=message.pk).update(**fields)
    for field, value in fields.items():
        setattr(message, field, value)


def fail_if_unfinished(message_id, code="timeout"):
    """Mark an answer that never finished as failed (the web side gave up waiting); returns whether it did."""
    changed = Message.objects.filter(pk=message_id, status__in=[Message.PENDING, Message.STREAMING]).update(
        status=Message.FAILED, error=code, finished_at=timezone.now())
    return bool(changed)


_purge_checked = {"day": None}


def _schedule_daily_purge():
    """Queue the retention purge at most once a day, from whichever chat worker answers first (each process
    asks Redis once a day, not once per answer)."""
    from tutor.tasks import chat_purge_conversations

    today = timezone.now().date().isoformat()
    if _purge_checked["day"] == today:
        return
    try:
        if cache.add(f"tutor:purge:{today}", 1, timeout=2 * 86400):
            chat_purge_conversations.delay()
        _purge_checked["day"] = today
    except Exception:
        log.exception("could not schedule the daily purge")
