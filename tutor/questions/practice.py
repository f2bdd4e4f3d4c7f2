"""Practice: students answer a released question set of any kind of question, get their score, and graded sets
report it to the LMS by the set's grading rule.

A set placed in the LMS by deep linking as a graded item has a line item there, kept by lti under the set's
resourceId (from a launch that names it, or found or created by that resourceId). After each submitted attempt of
a graded set, ``tutor.tasks.grade_attempt`` posts the person's score under the set's grading rule (best, last,
first attempt, or the average of all) through lti's AGS service: the gradebook always holds the rule's value,
never simply the latest attempt. The number of attempts a student may make is the set's to say.
"""

import logging

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from lti import ags
from tutor.questions import items
from tutor.questions.models import Attempt, QuestionSet
from tutor.questions.review import released_questions

log = logging.getLogger(__name__)


class PracticeError(ValueError):
    """A submission that cannot be accepted; the message is for the person."""


class GradeNotSent(Exception):
    """The LMS did not take the score this time (worth retrying)."""


def _values(answers, question):
    raw = answers.get(str(question.pk), answers.get(question.pk))
    if raw is None:
        return []
    return list(raw) if isinstance(raw, list | tuple) else [raw]


def score(questions, answers):
    """(total credit, {question id: response}, {question id: credit or None}) for answers keyed by question id (str or
    int), each a value or a list of values as a form sends them."""
    responses, credits = {}, {}
    for question in questions:
        response = items.read_response(question, _values(answers, question))
        responses[str(question.pk)] = response
        credits[str(question.pk)] = items.credit(question, response)
    return round(sum(c for c in credits.values() if c is not None), 4), responses, credits


def number(value):
    """A score for the reader: as few decimals as it needs (at most two), in the active language's format."""
    from django.utils.formats import number_format

    value = round(float(value), 2)
    places = 0 if value == int(value) else 1 if round(value, 1) == value else 2
    return number_format(value, places)


def attempts_left(question_set, user):
    """How many more attempts the person may make (None: no limit)."""
    if not question_set.attempts_allowed:
        return None
    return max(0, question_set.attempts_allowed - question_set.attempts.filter(user=user).count())


def grading_rule_text(question_set):
    """The set's grading rule and attempt limit in a sentence, for students before they start."""
    rule = str(dict(QuestionSet.GRADING)[question_set.grading])
    if question_set.attempts_allowed:
        return rule + ". " + ngettext("You may submit it %(n)d time.", "You may submit it %(n)d times.",
                                      question_set.attempts_allowed) % {"n": question_set.attempts_allowed}
    return rule + ". " + _("You may submit it as often as you like.")


def set_grading(question_set, grading, attempts_allowed):
    """Change the set's grading rule and attempt limit; a graded set's scores in the gradebook are sent again under
    the new rule (one task per person)."""
    if grading not in dict(QuestionSet.GRADING):
        raise PracticeError(_("Please choose a grading rule."))
    try:
        attempts_allowed = int(attempts_allowed or 0)
    except (TypeError, ValueError):
        attempts_allowed = -1
    if not 0 <= attempts_allowed <= 100:
        raise PracticeError(_("Please allow between 0 (no limit) and 100 attempts."))
    changed = question_set.grading != grading
    question_set.grading, question_set.attempts_allowed = grading, attempts_allowed
    question_set.save(update_fields=["grading", "attempts_allowed"])
    if changed and is_graded(question_set):
        with transaction.atomic():
            latest = {}
            for attempt_id, user_id in (question_set.attempts.exclude(grade_status=Attempt.NOT_GRADED)
                                        .order_by("submitted_at", "id").values_list("pk", "user_id")):
                latest[user_id] = attempt_id
            Attempt.objects.filter(pk__in=latest.values()).update(grade_status=Attempt.PENDING, grade_error="")
            for attempt_id in latest.values():
                transaction.on_commit(lambda pk=attempt_id: _enqueue(pk))
    return question_set


def submit(question_set, user, answers, *, report=True):
    """Store an attempt with its score; a graded set's rule score is queued for the LMS gradebook (report=False:
    never, and no attempt limit, e.g. for a teacher trying the set)."""
    if not question_set.is_released:
        raise PracticeError(_("This question set is not available."))
    questions = list(released_questions(question_set))
    if not questions:
        raise PracticeError(_("This question set has no questions."))
    if not any(_values(answers, q) and any(str(v).strip() for v in _values(answers, q)) for q in questions):
        raise PracticeError(_("Please answer at least one question."))
    total, responses, credits = score(questions, answers)
    graded = report and is_graded(question_set) and ags.can_report(user)
    with transaction.atomic():
        get_user_model().objects.select_for_update().filter(pk=user.pk).first()  # one submission at a time per person
        if report and question_set.attempts_allowed:
            if question_set.attempts.filter(user=user).count() >= question_set.attempts_allowed:
                raise PracticeError(ngettext(
                    "You have used your %(n)d attempt at this set; no more answers are taken.",
                    "You have used all %(n)d attempts at this set; no more answers are taken.",
                    question_set.attempts_allowed) % {"n": question_set.attempts_allowed})
        attempt = Attempt.objects.create(question_set=question_set, user=user, answers=responses, credits=credits,
                                         score=total, max_score=sum(q.is_scored for q in questions),
                                         grade_status=Attempt.PENDING if graded else Attempt.NOT_GRADED)
        if graded:
            transaction.on_commit(lambda: _enqueue(attempt.pk))
    return attempt


def _enqueue(attempt_id):
    from tutor.questions.tasks import grade_attempt

    grade_attempt.delay(attempt_id)


def is_graded(question_set):
    """Whether attempts are reported to the LMS gradebook."""
    return question_set.graded or ags.has_line_item(question_set.course_id, question_set.resource_id)


def rule_score(question_set, user):
    """(score, maximum) of the person's attempts at the set under its grading rule, or None without attempts."""
    attempts = list(question_set.attempts.filter(user=user).order_by("submitted_at", "id")
                    .values_list("score", "max_score"))
    if not attempts:
        return None
    if question_set.grading == QuestionSet.FIRST:
        return attempts[0]
    if question_set.grading == QuestionSet.LAST:
        return attempts[-1]
    if question_set.grading == QuestionSet.AVERAGE:
        return round(sum(s for s, _m in attempts) / len(attempts), 4), attempts[-1][1]
    return max(attempts, key=lambda a: a[0] / a[1] if a[1] else 0)


def attempt_stats(question_set):
    """For the lecturer: attempts, mean share of right answers (percent), scores sent / not sent to the LMS."""
    stats = question_set.attempts.aggregate(
        attempts=Count("id"), score=Sum("score"), maximum=Sum("max_score"),
        sent=Count("id", filter=Q(grade_status=Attempt.SENT)),
        failed=Count("id", filter=Q(grade_status=Attempt.FAILED)))
    stats["percent"] = round(100 * stats["score"] / stats["maximum"]) if stats["maximum"] else None
    return stats


def results(attempt):
    """Per question of the attempt: the question, the response, its credit, and for choices each option marked
    chosen and correct (for the result page)."""
    questions = list(attempt.question_set.questions.filter(pk__in=[int(k) for k in attempt.answers])
                     .select_related("source_chunk").order_by("position"))
    out = []
    for q in questions:
        response = attempt.answers.get(str(q.pk))
        credit = attempt.credits.get(str(q.pk)) if str(q.pk) in attempt.credits else items.credit(q, response)
        chosen = set(response) if isinstance(response, list) else {response}
        out.append({"question": q, "response": response, "credit": credit,
                    "credit_text": number(credit) if credit is not None else "",
                    "right": credit == 1.0, "partly": credit is not None and 0 < credit < 1,
                    "answered": response not in (None, "", []),
                    "options": [{"index": i, "text": text, "chosen": i in chosen, "correct": i in q.correct_set}
                                for i, text in enumerate(q.options)]})
    return out


# --- Grade passback ------------------------------------------------------------------------------------

LINE_ITEM_TAG = "tutor-practice"


def send_grade(attempt_id):
    """Post the person's score under the set's grading rule to the LMS, after one of their attempts (idempotent: the
    value is worked out when sent, so a repeated or late post sends what the rule says now); GradeNotSent when the
    LMS did not take it."""
    attempt = Attempt.objects.select_related("question_set", "user").filter(pk=attempt_id).first()
    if attempt is None or attempt.grade_status in (Attempt.SENT, Attempt.NOT_GRADED):
        return "skipped"
    question_set = attempt.question_set
    timestamp = timezone.now()  # before the value is read: a later post always carries the later value
    given, maximum = rule_score(question_set, attempt.user)
    try:
        url = ags.report_score(question_set.course_id, question_set.resource_id, attempt.user, given, maximum,
                               label=question_set.title, tag=LINE_ITEM_TAG, timestamp=timestamp)
    except ags.ScoreNotSent as exc:
        if exc.final:
            return grade_failed(attempt_id, exc.reason)
        Attempt.objects.filter(pk=attempt_id).update(grade_error=exc.reason)
        log.warning("attempt %s: score not taken by the LMS: %s", attempt_id, exc.reason)
        raise GradeNotSent(exc.reason) from exc
    Attempt.objects.filter(pk=attempt_id).update(grade_status=Attempt.SENT, grade_error="",
                                                 grade_sent_at=timezone.now())
    log.info("attempt %s: score %s/%s (%s) sent to %s", attempt_id, given, maximum, question_set.grading, url)
    return "sent"


def grade_failed(attempt_id, reason):
    """Give up on sending an attempt's score (logged, kept on the attempt for the lecturer)."""
    log.warning("attempt %s: score not sent: %s", attempt_id, reason)
    Attempt.objects.filter(pk=attempt_id).exclude(grade_status=Attempt.SENT).update(
        grade_status=Attempt.FAILED, grade_error=reason[:2000])
    return "failed"
