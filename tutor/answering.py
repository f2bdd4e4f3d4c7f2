"""The chat worker's answer to one question: grounded in the course texts, streamed, saved.

``answer`` rewrites follow-ups for retrieval, retrieves from this course only (tutor.relevance), declines when
nothing relevant is found, otherwise streams the model's answer through tutor.stream's Publisher (a Redis
buffer and the answer's channel); the final text and citations are saved to PostgreSQL, and the final message
(tutor.payloads, without launch tokens or URLs) is published with the end of the answer.
"""

import logging
import re
import time

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from courses.language import detect_language
from courses.retrieval import course_documents
from tutor.inference import InferenceClient, InferenceError
from tutor.models import Citation, Message, TutorConfig
from tutor.prompts import ANSWER_TOKENS, HISTORY_TURNS, fitted_messages, search_query, without_delimiters
from tutor.relevance import relevant_passages
from tutor.retention import schedule_daily_purge
from tutor.stream import Publisher, fail_if_unfinished

log = logging.getLogger(__name__)


def answer_language(config, question, course):
    """The language the answer is written in: the configured one, or the question's."""
    if config.answer_language in (TutorConfig.GERMAN, TutorConfig.ENGLISH):
        return config.answer_language
    words = re.findall(r"\w+", question)
    return detect_language(question) if len(words) >= 3 else (course.language or "de")[:2]


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
            Publisher(message_id).finish(Message.FAILED, failed)
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
    publisher = Publisher(message_id)
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
        stream = client.stream_chat(messages, temperature=config.temperature, max_tokens=ANSWER_TOKENS,
                                    on_wait=publisher.queued)
        for piece in stream:
            # the time limit counts from when the model took the question, not the wait for its turn
            if time.monotonic() > stream.started_at + settings.CHAT_ANSWER_SECONDS:  # ending the loop closes it
                log.warning("answer %s: still streaming after %s s; stopped", message_id, settings.CHAT_ANSWER_SECONDS)
                return _fail(message, publisher, "timeout", "".join(publisher.text))
            publisher.piece(piece)
            if len(publisher.text) == 1:  # marked after the first piece is out, not before it
                Message.objects.filter(pk=message_id).update(status=Message.STREAMING)
                log.info("answer %s: first piece after %.0f ms (retrieval and prompt %.0f ms, waiting for the "
                         "model %.0f ms)", message_id, (time.monotonic() - started) * 1000,
                         (retrieved - started) * 1000, (stream.started_at - retrieved) * 1000)
    except InferenceError as exc:
        log.warning("answer %s failed (%s): %s", message_id, exc.code, exc.reason)
        return _fail(message, publisher, exc.code, "".join(publisher.text))
    text = without_delimiters("".join(publisher.text))
    if not text:
        log.warning("answer %s: the model's answer was empty", message_id)
        return _fail(message, publisher, "bad_response")
    if stream.cut_off:  # the answer used all ANSWER_TOKENS: kept, and the reader is told where it ends
        log.info("answer %s: cut off at the length limit (%d tokens)", message_id, ANSWER_TOKENS)
        with translation.override(language):
            note = "\n\n*" + _("(The answer reached its length limit and ends here.)") + "*"
        publisher.piece(note)
        text += note
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
    schedule_daily_purge()


def _fail(message, publisher, code, partial=""):
    _save(message, status=Message.FAILED, error=code, text=partial, finished_at=timezone.now())
    publisher.finish(Message.FAILED, message)


def _save(message, **fields):
    """Write these fields of the message (an UPDATE: nothing if it was deleted meanwhile) and keep them on it,
    for the final payload."""
    Message.objects.filter(pk=message.pk).update(**fields)
    for field, value in fields.items():
        setattr(message, field, value)
