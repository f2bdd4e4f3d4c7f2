"""The chat worker's answer to one question: grounded in the course texts, streamed, saved.

``answer`` loads the question and its conversation and hands them to ``respond``, the pipeline itself (also run by
tutor.chat.checks for the lecturer's test questions and by ``manage.py evaluate_answers``): it makes the search query
(follow-ups joined to the previous question, or reworded by the model where that is on: tutor.inference.rewriting),
retrieves from this course only (tutor.chat.relevance), weighs the evidence (tutor.chat.answerability), declines when
the texts do not hold the answer, otherwise streams the model's answer into ``out`` (tutor.chat.stream's Publisher: a
Redis buffer and the answer's channel). With the quote check on, the answer's quote block is held back while its text
streams; at the end each quote is looked up in the passage it cites, and an answer with none found is replaced by the
decline (strict) or marked (open). The final text and citations are saved to PostgreSQL, and the final message
(tutor.chat.payloads, without URLs) is published with the end of the answer.
"""

import logging
import re
import time
from dataclasses import dataclass, field, replace

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from courses.language import detect_language
from courses.retrieval import course_documents
from courses.vocabulary import names
from tutor.chat.answerability import (
    NONE,
    WEAK,
    QuoteSplitter,
    asks_for_default,
    asks_for_figure,
    assess,
    check_quotes,
    lacks_default,
    lacks_figure,
)
from tutor.chat.models import Citation, Message
from tutor.chat.quotes import choose_quotes, quotes_text
from tutor.chat.relevance import relevant_passages
from tutor.chat.stream import Publisher, fail_if_unfinished
from tutor.inference.client import InferenceClient, InferenceError
from tutor.inference.prompts import (
    ANSWER_TOKENS,
    HISTORY_TURNS,
    fitted_messages,
    search_query,
    without_delimiters,
)
from tutor.inference.rewriting import rewrite_question
from tutor.models import TutorConfig

log = logging.getLogger(__name__)


def answer_language(config, question, course, ui_language=None):
    """The language the answer is written in: the configured one, else the question's; a question too short to
    tell (or as German as English) is answered in the page's language, else the course's."""
    if config.answer_language in (TutorConfig.GERMAN, TutorConfig.ENGLISH):
        return config.answer_language
    fallback = (ui_language or course.language or "de")[:2]
    return detect_language(question, default=fallback if fallback in ("de", "en") else "de")


def declined_text(course_id, language, unknown=(), figure=False, default=False):
    """What the tutor says when the course texts do not cover a question, naming the texts searched (and the
    words of the question that none of them uses, or that they give no figure where the question asks for one,
    or no default where it asks for the default)."""
    titles = course_documents(course_id)
    with translation.override(language):
        if not titles:
            return _("This course has no texts yet that I could search, so I cannot answer this question. "
                     "Please ask your teacher.")
        listing = "\n".join(f"- {title}" for title in titles)
        if unknown:
            return _("The course texts never mention %(words)s, so I would rather not guess. I searched:"
                     "\n\n%(titles)s\n\nPlease ask your teacher.") % {
                "words": ", ".join(f"\u201c{word}\u201d" for word in unknown), "titles": listing}
        if figure:
            return _("The course texts give no number, duration, date or version for this, so I would rather not "
                     "guess. I searched:\n\n%(titles)s\n\nPlease ask your teacher.") % {"titles": listing}
        if default:
            return _("The course texts do not say what is set by default here, so I would rather not guess. "
                     "I searched:\n\n%(titles)s\n\nPlease ask your teacher.") % {"titles": listing}
        return _("I could not find anything about this in the course texts, so I would rather not guess. "
                 "I searched:\n\n%(titles)s\n\nPlease rephrase the question or ask your teacher.") % {
            "titles": listing}


def _note(language, text):
    with translation.override(language):
        return "\n\n*" + _(text) + "*"


UNVERIFIED_NOTE = gettext_noop("(I could not find the words I relied on in the course texts: please check this "
                               "answer against the sources.)")
WEAK_NOTE = gettext_noop("(The course texts may not fully answer this question: please check the sources.)")
GENERAL_NOTE = gettext_noop("(Nothing on this was found in the course texts: this answer is general knowledge.)")
CUT_OFF_NOTE = gettext_noop("(The answer reached its length limit and ends here.)")
QUOTES_ONLY_NOTE = gettext_noop("Answer quoted from the course texts; no language model explanation.")
NO_EXPLANATION_NOTE = gettext_noop("Answer quoted from the course texts; the language model's explanation could not "
                                   "be checked against them and is left out.")
MODEL_FAILED_NOTE = gettext_noop("Answer quoted from the course texts; the language model did not answer.")


def _line(language, text):
    with translation.override(language):
        return "*" + _(text) + "*"


@dataclass
class Outcome:
    """How a question was answered: the text, the passages it may cite (numbered from 1), the search query, whether
    it was declined, the evidence it rests on, the verified quote per source number; error: a failure's code
    (text then holds what had streamed)."""

    text: str = ""
    passages: list = field(default_factory=list)
    retrieved: list = field(default_factory=list)  # what the search found, whether used or not
    query: str = ""
    declined: bool = False
    evidence: dict = field(default_factory=dict)
    quotes: dict = field(default_factory=dict)
    error: str = ""
    quoted: list = field(default_factory=list)  # the tool's quotes from the course texts (Quote.as_dict), shown first
    first_visible: float | None = None  # seconds from the question to the first thing shown (quotes or text)


class Collector:
    """Where respond streams when nobody reads along (test questions, evaluations): it keeps the pieces."""

    def __init__(self):
        self.text = []
        self.quoted = []

    def quotes(self, quotes):
        """Keep the tool's quotes."""
        self.quoted = quotes

    def piece(self, text):
        """Keep one piece of the answer."""
        self.text.append(text)

    def reset(self):
        """Start the answer over."""
        self.text = []

    def queued(self, ahead):
        """Waiting for the model: nothing to tell anyone."""


def model_client(config, **overrides):
    """The inference client of this course's tutor (its endpoint and model, else the installation's)."""
    client = InferenceClient.from_settings(url=config.endpoint or None, model=config.model or None,
                                           timeout=config.timeout_seconds)
    return replace(client, **overrides) if overrides else client


def respond(course, config, question, turns, out, *, ui_language=None, on_first_piece=None, kind=None):
    """Answer one question from the course's texts, streaming into out (a Publisher or a Collector): the Outcome.

    turns: the conversation's earlier turns ({"role", "content"}, oldest first). kind: the inference capacity
    class (chat by default; evaluations run as batch work). Unless the tutor answers by explanation only, the
    sentences of the passages that answer the question (tutor.chat.quotes) go out first (out.quotes); quoting
    only, they are the answer and no model is asked.
    """
    started = time.monotonic()
    language = answer_language(config, question, course, ui_language)
    mode = config.answers_with
    earlier = [t["content"] for t in turns if t["role"] == Message.USER]
    query, also, evidence = search_query(question, earlier), [], {}
    options = {} if kind is None else {"kind": kind}
    if config.rewrites_queries and mode != TutorConfig.QUOTES_ONLY:
        rewritten = rewrite_question(config, question, earlier, language, **options)
        also = rewritten or []
        evidence["rewritten"] = bool(rewritten)
    passages = relevant_passages(course.pk, query, config.sources, also=also)
    retrieved_passages = passages
    judged = assess(passages, passages[0].embedding_model if passages else None,
                    names(course.pk, question) if passages else None)
    evidence["retrieval"] = judged.as_dict()
    chosen, no_figure, no_default = None, False, False
    detail = asks_for_figure(question) or asks_for_default(question)
    if judged.level != NONE and (mode != TutorConfig.EXPLANATION_ONLY or detail):
        chosen = choose_quotes(course.pk, question, passages)  # also the evidence for a question asking a detail
        # the detail's evidence: the best quotes (and a table's row that one of them brings), not the third one
        # added only because it scored close to them
        leads = [quote.lead for quote in chosen if not quote.close]
        no_figure = lacks_figure(question, leads)
        no_default = not no_figure and lacks_default(question, leads)
        if no_figure or no_default:  # the texts cover the topic but not the figure or the default asked for
            judged = replace(judged, level=NONE)
            evidence["retrieval"] = {**judged.as_dict(), **({"figure": False} if no_figure else {"default": False})}
    if judged.level == NONE:
        if config.strictness == TutorConfig.STRICT or not passages or mode == TutorConfig.QUOTES_ONLY:
            text = declined_text(course.pk, language, judged.unknown, figure=no_figure, default=no_default)
            out.piece(text)
            return Outcome(text=text, query=query, declined=True, evidence=evidence, retrieved=passages,
                           first_visible=time.monotonic() - started)
        passages = []  # open: the model may answer from general knowledge, marked as such
    retrieved = time.monotonic()
    shown_at = []

    def visible(model_started=None):
        if not shown_at:
            shown_at.append(time.monotonic() - started)
            if on_first_piece:  # after the first thing is out, not before it
                on_first_piece(started, retrieved, model_started or time.monotonic())

    quoted = []
    if mode != TutorConfig.EXPLANATION_ONLY and passages:
        quoted = [q.as_dict() for q in (chosen if chosen is not None else choose_quotes(course.pk, question, passages))]
        evidence["quoted"] = len(quoted)
        if quoted:
            out.quotes(quoted)
            visible()
    if mode == TutorConfig.QUOTES_ONLY:
        return _quoted_answer(course, out, quoted, QUOTES_ONLY_NOTE, language, query=query, evidence=evidence,
                              passages=passages, retrieved=retrieved_passages, first_visible=shown_at)

    def fall_back(note, failed):
        """The model failed or its explanation did not hold: the quotes alone, when there are any."""
        if quoted:
            out.reset()
            return _quoted_answer(course, out, quoted, note, language, query=query, evidence=evidence,
                                  passages=retrieved_passages, retrieved=retrieved_passages, first_visible=shown_at)
        return failed

    quotes = config.checks_quotes and bool(passages)
    evidence["quote_check"] = quotes
    try:
        client = model_client(config)
        messages, passages = fitted_messages(client, config, question, passages, turns, language=language,
                                             quotes=quotes)
        stream = client.stream_chat(messages, temperature=config.temperature, max_tokens=ANSWER_TOKENS,
                                    on_wait=out.queued, **options)
        splitter = QuoteSplitter() if quotes else None
        for piece in stream:
            # the time limit counts from when the model took the question, not the wait for its turn
            if time.monotonic() > stream.started_at + settings.CHAT_ANSWER_SECONDS:  # ending the loop closes it
                log.warning("answer still streaming after %s s; stopped", settings.CHAT_ANSWER_SECONDS)
                return Outcome(text="".join(out.text), query=query, evidence=evidence, error="timeout",
                               quoted=quoted, first_visible=_first(shown_at))
            shown = splitter.feed(piece) if splitter else piece
            if shown:
                out.piece(shown)
                if len(out.text) == 1:
                    visible(stream.started_at)
        rest = splitter.flush() if splitter else ""
        if rest:
            out.piece(rest)
    except InferenceError as exc:
        log.warning("answer failed (%s): %s", exc.code, exc.reason)
        failed = Outcome(text="".join(out.text), query=query, evidence=evidence, error=exc.code, quoted=quoted,
                         first_visible=_first(shown_at))
        return fall_back(MODEL_FAILED_NOTE, failed)
    text = without_delimiters("".join(out.text))
    if not text:
        log.warning("the model's answer was empty")
        return fall_back(MODEL_FAILED_NOTE, Outcome(query=query, evidence=evidence, error="bad_response"))
    outcome = Outcome(text=text, passages=passages, query=query, evidence=evidence, retrieved=retrieved_passages,
                      quoted=quoted, first_visible=_first(shown_at))
    notes = []
    if stream.cut_off:  # the answer used all ANSWER_TOKENS: kept, and the reader is told where it ends
        log.info("answer cut off at the length limit (%d tokens)", ANSWER_TOKENS)
        notes.append(CUT_OFF_NOTE)
    if not passages:
        notes.append(GENERAL_NOTE)
    elif quotes:
        check = check_quotes(splitter.quotes, passages)
        evidence["quotes"] = [{"source": n, "quote": q[:300], "found": f} for n, q, f in check.quotes]
        evidence["grounded"] = check.grounded
        outcome.quotes = {n: q for n, q, f in check.quotes if f}
        if not check.grounded and not stream.cut_off:
            if config.strictness == TutorConfig.STRICT:
                if quoted:  # the tool's own quotes stand in the texts: they stay, the explanation goes
                    log.info("no quote of the explanation was found in its sources: the quotes alone")
                    return fall_back(NO_EXPLANATION_NOTE, None)
                log.info("no quote of the answer was found in its sources: declined")
                out.reset()
                declined = declined_text(course.pk, language)
                out.piece(declined)
                return Outcome(text=declined, query=query, declined=True, evidence=evidence,
                               retrieved=retrieved_passages, first_visible=_first(shown_at))
            notes.append(UNVERIFIED_NOTE)
    elif judged.level == WEAK and config.strictness == TutorConfig.STRICT:
        notes.append(WEAK_NOTE)
    for note in notes:
        shown = _note(language, note)
        out.piece(shown)
        outcome.text += shown
    return outcome


def _first(shown_at):
    return shown_at[0] if shown_at else None


def _quoted_answer(course, out, quoted, note, language, *, query, evidence, passages, retrieved, first_visible):
    """The Outcome of an answer made of the tool's quotes (shown already) and one line saying so; without any
    quote, the decline."""
    if not quoted:
        text = declined_text(course.pk, language)
        out.piece(text)
        return Outcome(text=text, query=query, declined=True, evidence=evidence, retrieved=retrieved,
                       first_visible=_first(first_visible))
    text = _line(language, note)
    out.piece(text)
    return Outcome(text=text, passages=passages, query=query, evidence=evidence, retrieved=retrieved, quoted=quoted,
                   first_visible=_first(first_visible))


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
    turns = [{"role": m.role, "content": "\n\n".join(filter(None, [quotes_text(m.quotes), m.text]))}
             for m in earlier if m is not question and m.text and (m.role == Message.USER or m.status == Message.DONE)]
    return question, turns


def _cited_numbers(text):
    return {int(n) for n in re.findall(r"\[(\d{1,2})\]", text)}


def answer(message_id, ui_language=None):
    """Produce one answer (idempotent: a finished answer is left alone, a half-streamed one starts over).

    Whatever goes wrong, the answer ends as "failed" with a reason the person can read; the question stays.
    ui_language: the language of the page the question was asked on (for a question too short to tell its own).
    """
    try:
        _answer(message_id, ui_language)
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


def _answer(message_id, ui_language=None):
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

    def streaming(started, retrieved, model_started):
        Message.objects.filter(pk=message_id).update(status=Message.STREAMING)
        log.info("answer %s: first piece after %.0f ms (retrieval and prompt %.0f ms, waiting for the model %.0f ms)",
                 message_id, (time.monotonic() - started) * 1000, (retrieved - started) * 1000,
                 (model_started - retrieved) * 1000)

    try:
        outcome = respond(course, config, question.text, turns, publisher, ui_language=ui_language,
                          on_first_piece=streaming)
    except InferenceError as exc:  # the rewriting's own failures are caught there; this is a refused endpoint
        log.warning("answer %s failed (%s): %s", message_id, exc.code, exc.reason)
        return _fail(message, publisher, exc.code)
    except Exception:
        log.exception("retrieval failed for message %s", message_id)
        return _fail(message, publisher, "internal")
    if outcome.error:
        return _fail(message, publisher, outcome.error, outcome.text, outcome.quoted)
    return _finish(message, publisher, outcome)


def _finish(message, publisher, outcome):
    cited = _cited_numbers(outcome.text) | {q["number"] for q in outcome.quoted}
    citations = [Citation(message=message, number=i, chunk_id=p.chunk_id, document_title=p.document_title[:255],
                          section_path=p.section_path, page=p.page, excerpt=p.text[:500], score=p.score,
                          cited=i in cited, quote=outcome.quotes.get(i, ""))
                 for i, p in enumerate(outcome.passages, start=1)]
    with transaction.atomic():
        Citation.objects.filter(message=message).delete()
        Citation.objects.bulk_create(citations)
        _save(message, text=outcome.text, status=Message.DONE, error="", declined=outcome.declined,
              search_query=outcome.query[:2000], evidence=outcome.evidence or None, quotes=outcome.quoted,
              finished_at=timezone.now())
    publisher.finish(Message.DONE, message, citations)


def _fail(message, publisher, code, partial="", quoted=()):
    _save(message, status=Message.FAILED, error=code, text=partial, quotes=list(quoted), finished_at=timezone.now())
    publisher.finish(Message.FAILED, message)


def _save(message, **fields):
    """Write these fields of the message (an UPDATE: nothing if it was deleted meanwhile) and keep them on it,
    for the final payload."""
    Message.objects.filter(pk=message.pk).update(**fields)
    for name, value in fields.items():
        setattr(message, name, value)
