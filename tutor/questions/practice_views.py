"""Students' practice pages: the released sets of a course, answering one (every kind of question, with the set's
grading rule and attempt limit shown before they start), and the result of an attempt.

Thin views: the work is in tutor.questions.practice. Students only ever see released sets and their approved
questions.
"""

import logging

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache

from courses.access import course_member, tool_url
from tutor.questions import practice, review
from tutor.questions.models import Attempt, QuestionSet

log = logging.getLogger(__name__)


# --- Students ------------------------------------------------------------------------------------------

@never_cache
@course_member()
def practice_sets(request, course_id):
    """The released question sets of the course."""
    return render(request, "tutor/practice_sets.html", {
        "course": request.course, "sets": QuestionSet.objects.filter(course=request.course).released(),
        "is_teaching": request.membership.is_teaching})


@never_cache
@course_member()
def practice_set(request, course_id, set_id):
    """The questions of a released set (POST: submit the answers, then the result page)."""
    found = get_object_or_404(QuestionSet.objects.released(), pk=set_id, course_id=course_id)
    if request.method == "POST":
        answers = {key[2:]: request.POST.getlist(key) for key in request.POST if key.startswith("q-")}
        try:
            attempt = practice.submit(found, request.user, answers, report=not request.membership.is_teaching)
        except practice.PracticeError as exc:
            log.info("practice: refused submission to set %s: %s", set_id, exc)
            messages.error(request, str(exc))
        else:
            return redirect(tool_url("tutor:practice-result", course_id, set_id, attempt.pk))
    earlier = list(Attempt.objects.filter(question_set=found, user=request.user)[:5])
    for attempt in earlier:
        attempt.score_text = practice.number(attempt.score)
    return render(request, "tutor/practice_set.html", {
        "course": request.course, "set": found,
        "questions": practice.with_shown_options(found, request.user, review.released_questions(found)),
        "graded": practice.is_graded(found), "is_teaching": request.membership.is_teaching,
        "rule": practice.grading_rule_text(found),
        "left": None if request.membership.is_teaching else practice.attempts_left(found, request.user),
        "earlier": earlier})


@never_cache
@course_member()
def practice_result(request, course_id, set_id, attempt_id):
    """One's own attempt: score, right answers, explanations and the source passages."""
    attempt = get_object_or_404(Attempt.objects.select_related("question_set"), pk=attempt_id,
                                question_set_id=set_id, question_set__course_id=course_id, user=request.user)
    return render(request, "tutor/practice_result.html", {
        "course": request.course, "set": attempt.question_set, "attempt": attempt,
        "results": practice.results(attempt), "score": practice.number(attempt.score),
        "is_teaching": request.membership.is_teaching})
