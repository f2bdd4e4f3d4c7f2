"""Practice: students answer a released question set, get their score, and graded sets report it to the LMS.

A set placed in the LMS by deep linking as a graded item has a line item there, kept by lti under the set's
resourceId (from a launch that names it, or found or created by that resourceId). Each submitted attempt of
a graded set is posted by ``tutor.tasks.grade_attempt`` through lti's AGS service (retried on failure; an
attempt already sent is never sent again, and its timestamp is the submission time, so a repeated post
changes nothing at the LMS).
"""

import logging

from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from lti import ags
from tutor.models import Attempt
from tutor.questions import released_questions

log = logging.getLogger(__name__)


class PracticeError(ValueError):
    """A submission that cannot be accepted; the message is for the person."""


class GradeNotSent(Exception):
    """The LMS did not take the score this time (worth retrying)."""


def score(questions, answers):
    """(number correct, {question id: chosen index or None}) for answers keyed by question id (str or int)."""
    chosen, correct = {}, 0
    for question in questions:
        raw = answers.get(str(question.pk), answers.get(question.pk))
        try:
            index = int(raw)
        except (TypeError, ValueError):
            index = None
        if index is not None and not 0 <= index < len(question.options):
            index = None
        chosen[str(question.pk)] = index
        correct += index == question.correct_index
    return correct, chosen


def submit(question_set, user, answers, *, report=True):
    """Store an attempt with its score; a graded set's score is queued for the LMS gradebook (report=False:
    never, e.g. for a teacher trying the set)."""
    if not question_set.is_released:
        raise PracticeError(_("This question set is not available."))
    questions = list(released_questions(question_set))
    if not questions:
        raise PracticeError(_("This question set has no questions."))
    if not any(str(q.pk) in answers for q in questions):
        raise PracticeError(_("Please answer at least one question."))
    correct, chosen = score(questions, answers)
    graded = report and is_graded(question_set) and ags.can_report(user)
    with transaction.atomic():
        attempt = Attempt.objects.create(question_set=question_set, user=user, answers=chosen, score=correct,
                                         max_score=len(questions),
                                         grade_status=Attempt.PENDING if graded else Attempt.NOT_GRADED)
        if graded:
            transaction.on_commit(lambda: _enqueue(attempt.pk))
    return attempt


def _enqueue(attempt_id):
    from tutor.tasks import grade_attempt

    grade_attempt.delay(attempt_id)


def is_graded(question_set):
    """Whether attempts are reported to the LMS gradebook."""
    return question_set.graded or ags.has_line_item(question_set.course_id, question_set.resource_id)


def attempt_stats(question_set):
    """For the lecturer: attempts, mean share of right answers (percent), scores sent / not sent to the LMS."""
    stats = question_set.attempts.aggregate(
        attempts=Count("id"), score=Sum("score"), maximum=Sum("max_score"),
        sent=Count("id", filter=Q(grade_status=Attempt.SENT)),
        failed=Count("id", filter=Q(grade_status=Attempt.FAILED)))
    stats["percent"] = round(100 * stats["score"] / stats["maximum"]) if stats["maximum"] else None
    return stats


def results(attempt):
    """Per question of the attempt: question, chosen index, whether right (for the result page)."""
    questions = list(attempt.question_set.questions.filter(pk__in=[int(k) for k in attempt.answers])
                     .select_related("source_chunk").order_by("position"))
    return [{"question": q, "chosen": attempt.answers.get(str(q.pk)),
             "right": attempt.answers.get(str(q.pk)) == q.correct_index,
             "options": [{"index": i, "text": text, "chosen": attempt.answers.get(str(q.pk)) == i,
                          "correct": i == q.correct_index} for i, text in enumerate(q.options)]}
            for q in questions]


# --- Grade passback ------------------------------------------------------------------------------------

LINE_ITEM_TAG = "tutor-practice"


def send_grade(attempt_id):
    """Post one attempt's score to the LMS (idempotent); GradeNotSent when the LMS did not take it."""
    attempt = Attempt.objects.select_related("question_set", "user").filter(pk=attempt_id).first()
    if attempt is None or attempt.grade_status in (Attempt.SENT, Attempt.NOT_GRADED):
        return "skipped"
    question_set = attempt.question_set
    try:
        url = ags.report_score(question_set.course_id, question_set.resource_id, attempt.user, attempt.score,
                               attempt.max_score, label=question_set.title, tag=LINE_ITEM_TAG,
                               timestamp=attempt.submitted_at)
    except ags.ScoreNotSent as exc:
        if exc.final:
            return grade_failed(attempt_id, exc.reason)
        Attempt.objects.filter(pk=attempt_id).update(grade_error=exc.reason)
        log.warning("attempt %s: score not taken by the LMS: %s", attempt_id, exc.reason)
        raise GradeNotSent(exc.reason) from exc
    Attempt.objects.filter(pk=attempt_id).update(grade_status=Attempt.SENT, grade_error="",
                                                 grade_sent_at=timezone.now())
    log.info("attempt %s: score %s/%s sent to %s", attempt_id, attempt.score, attempt.max_score, url)
    return "sent"


def grade_failed(attempt_id, reason):
    """Give up on sending an attempt's score (logged, kept on the attempt for the lecturer)."""
    log.warning("attempt %s: score not sent: %s", attempt_id, reason)
    Attempt.objects.filter(pk=attempt_id).exclude(grade_status=Attempt.SENT).update(
        grade_status=Attempt.FAILED, grade_error=reason[:2000])
    return "failed"
