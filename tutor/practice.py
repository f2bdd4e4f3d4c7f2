"""Practice: students answer a released question set, get their score, and graded sets report it to the LMS.

A set placed in the LMS by deep linking as a graded item has a line item there. Its URL comes with the
launch (the AGS endpoint claim's ``lineitem``) and is recorded on the set; otherwise the line item is found
(or created) in the course's line item container by the set's resourceId. Each submitted attempt of a
graded set is posted by ``tutor.tasks.grade_attempt`` (retried on failure; an attempt already sent is never
sent again, and its timestamp is the submission time, so a repeated post changes nothing at the LMS).
"""

import logging

import requests
from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from pylti1p3.exception import LtiException, LtiServiceException

from tutor.models import Attempt, QuestionSet
from tutor.questions import released_questions

log = logging.getLogger(__name__)


class PracticeError(ValueError):
    """A submission that cannot be accepted; the message is for the person."""


class GradeNotSent(Exception):
    """The LMS did not take the score this time (worth retrying)."""


def released_sets(course):
    """The course's question sets students can practise, newest first."""
    return QuestionSet.objects.filter(course=course, status=QuestionSet.RELEASED)


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
    graded = report and is_graded(question_set) and _lti_user_exists(user)
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
    return bool(question_set.graded or question_set.line_item_url)


def _lti_user_exists(user):
    from lti.models import LtiUser

    return LtiUser.objects.filter(user=user).exists()


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


# --- Placement in the LMS and grade passback ---------------------------------------------------------

def record_placement(question_set, lti_context, ags_claim):
    """Remember the line item of a launch of the placed set (the AGS claim's ``lineitem``), if it has one."""
    lineitem = (ags_claim or {}).get("lineitem") or ""
    if not lineitem or question_set.course_id != lti_context.course_id:
        return False
    if (question_set.line_item_url, question_set.lti_context_id, question_set.graded) != (lineitem, lti_context.pk,
                                                                                          True):
        QuestionSet.objects.filter(pk=question_set.pk).update(line_item_url=lineitem, lti_context=lti_context,
                                                              graded=True)
        log.info("question set %s: line item %s recorded from a launch", question_set.pk, lineitem)
    return True


def _context_for(question_set, user):
    """The LTI context to report through: the set's own, else a context of its course the person came from."""
    from lti.models import LtiContext, LtiUser

    registrations = LtiUser.objects.filter(user=user).values_list("registration_id", flat=True)
    contexts = LtiContext.objects.select_related("registration").filter(course_id=question_set.course_id,
                                                                        registration_id__in=registrations)
    if question_set.lti_context_id:
        own = contexts.filter(pk=question_set.lti_context_id).first()
        if own:
            return own
    return contexts.exclude(lineitems_url="").order_by("-updated_at").first()


def send_grade(attempt_id):
    """Post one attempt's score to the LMS (idempotent); GradeNotSent when the LMS did not take it."""
    from lti.ags import find_or_create_line_item, post_score

    attempt = Attempt.objects.select_related("question_set", "user").filter(pk=attempt_id).first()
    if attempt is None or attempt.grade_status in (Attempt.SENT, Attempt.NOT_GRADED):
        return "skipped"
    question_set = attempt.question_set
    context = _context_for(question_set, attempt.user)
    if context is None:
        return grade_failed(attempt_id, "no LTI context of this course for the person")
    url = question_set.line_item_url
    try:
        if not url:
            if not context.lineitems_url:
                return grade_failed(attempt_id, "the LMS offers no line item service for this course")
            item = find_or_create_line_item(context, question_set.resource_id, question_set.title,
                                            attempt.max_score, tag="tutor-practice")
            url = item["id"]
            QuestionSet.objects.filter(pk=question_set.pk).update(line_item_url=url, lti_context=context)
        post_score(context, url, attempt.user, attempt.score, attempt.max_score, activity_progress="Completed",
                   grading_progress="FullyGraded", timestamp=attempt.submitted_at)
    except (requests.RequestException, LtiServiceException, LtiException) as exc:
        detail = f"{exc.__class__.__name__}: {exc}"[:500]
        Attempt.objects.filter(pk=attempt_id).update(grade_error=detail)
        log.warning("attempt %s: score not taken by the LMS: %s", attempt_id, detail)
        raise GradeNotSent(detail) from exc
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
