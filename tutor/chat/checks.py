"""Checking the tutor against questions with known answers: the chat pipeline (tutor.chat.answering.respond) run for
one question at a time, as batch work, without a conversation; for a lecturer's test questions (TestQuestion,
shown on the tutor settings page) and for ``manage.py evaluate_answers``."""

import logging
from dataclasses import dataclass

from django.utils import timezone

from tutor.chat.models import TestQuestion
from tutor.inference.client import BATCH
from tutor.models import TutorConfig

log = logging.getLogger(__name__)


@dataclass
class Result:
    """How the tutor did on one question: declined or answered, whether the answer or a passage it cites (or any
    passage the search found) contains an expected string; error: a failure's code."""

    declined: bool
    answer: str
    in_answer: bool
    in_cited: bool
    in_sources: bool
    error: str = ""

    @property
    def answered(self):
        """Whether the tutor gave an answer (neither declined nor failed)."""
        return not self.declined and not self.error


def contains(text, expected):
    """Whether text contains one of the expected strings (case and spacing ignored)."""
    from tutor.chat.answerability import normalise

    text = normalise(text)
    return any(normalise(e) and normalise(e) in text for e in expected)


def ask(course, question, expected=(), config=None):
    """The Result of asking the course's tutor one question (its settings, or config), as batch work."""
    from tutor.chat.answering import Collector, _cited_numbers, respond

    config = config or TutorConfig.for_course(course)
    outcome = respond(course, config, question, [], Collector(), kind=BATCH)
    cited = _cited_numbers(outcome.text)
    passages = outcome.passages
    return Result(declined=outcome.declined, answer=outcome.text, error=outcome.error,
                  in_answer=bool(expected) and not outcome.declined and contains(outcome.text, expected),
                  in_cited=any(contains(p.text, expected) for i, p in enumerate(passages, 1) if i in cited),
                  in_sources=any(contains(p.text, expected) for p in outcome.retrieved))


def check_test_questions(course_id):
    """Ask the course's tutor each of its test questions and keep how it did (the task of the settings page's
    "Check now"); returns how many were checked."""
    questions = list(TestQuestion.objects.filter(course_id=course_id).select_related("course"))
    for test in questions:
        expected = [test.expected] if test.expected.strip() else []
        try:
            result = ask(test.course, test.question, expected)
        except Exception:
            log.exception("test question %s could not be checked", test.pk)
            result = Result(False, "", False, False, False, error="internal")
        TestQuestion.objects.filter(pk=test.pk).update(
            checked_at=timezone.now(), answered=result.answered, answer=result.answer[:4000], error=result.error,
            found=result.in_sources if expected else None,
            correct=(result.in_answer or result.in_cited) if expected and result.answered else None)
    return len(questions)
