"""Pages of question sets: the lecturer's Questions pages (generate, review, release, export) and students' practice.

Thin views: the work is in tutor.questions, tutor.practice and tutor.exports. Teaching pages need
``course_member(teaching=True)``; students only ever see released sets and their approved questions.
"""

import logging

from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from courses.access import course_member, tool_url
from tutor import exports, practice, questions
from tutor.models import Attempt, Question, QuestionSet

log = logging.getLogger(__name__)


def _set_or_404(course_id, set_id):
    return get_object_or_404(QuestionSet, pk=set_id, course_id=course_id)


def _to_set(request, course_id, set_id):
    return redirect(tool_url("tutor:question-set", course_id, set_id, token=request.launch_token))


# --- Lecturer ----------------------------------------------------------------------------------------

@never_cache
@course_member(teaching=True)
def question_sets(request, course_id):
    """The course's question sets, and the form to generate a new one from a section (POST)."""
    if request.method == "POST":
        try:
            question_set = questions.start_generation(
                request.course, request.POST.getlist("section"), request.POST.get("count", ""), request.user,
                request.POST.get("title", ""))
        except questions.QuestionError as exc:
            log.info("question sets: refused generation in course %s: %s", course_id, exc)
            messages.error(request, str(exc))
            return redirect(tool_url("tutor:questions", course_id, token=request.launch_token))
        messages.success(request, _("The questions are being generated."))
        return _to_set(request, course_id, question_set.pk)
    sets = QuestionSet.objects.filter(course=request.course).prefetch_related("questions")
    return render(request, "tutor/questions.html", {
        "course": request.course, "sets": sets, "sections": questions.sections_of(request.course),
        "max_questions": questions.MAX_QUESTIONS})


def _set_context(request, question_set):
    return {"course": request.course, "set": question_set, "error": questions.error_message(question_set),
            "questions": question_set.questions.select_related("source_chunk").order_by("position"),
            "approved": question_set.questions.approved().count(),
            "attempts": question_set.attempts.count(), "graded": practice.is_graded(question_set),
            "stats": practice.attempt_stats(question_set)}


@never_cache
@course_member(teaching=True)
def question_set(request, course_id, set_id):
    """Review page of one set: generation progress or failure, each question with edit/approve/reject."""
    return render(request, "tutor/question_set.html", _set_context(request, _set_or_404(course_id, set_id)))


@require_POST
@course_member(teaching=True)
def question_edit(request, course_id, set_id, question_id):
    """Save a lecturer's edit of a question, or approve/reject it (POST decision=approved|rejected|draft)."""
    found = get_object_or_404(Question, pk=question_id, question_set_id=set_id, question_set__course_id=course_id)
    try:
        if request.POST.get("decision"):
            questions.review_question(found, request.POST["decision"])
        else:
            questions.edit_question(found, request.POST.get("stem", ""), request.POST.getlist("option"),
                                    request.POST.get("correct", ""), request.POST.get("explanation", ""))
            messages.success(request, _("The question was saved."))
    except questions.QuestionError as exc:
        log.info("question %s: refused change: %s", question_id, exc)
        messages.error(request, str(exc))
    return _to_set(request, course_id, set_id)


@require_POST
@course_member(teaching=True)
def question_set_action(request, course_id, set_id):
    """Release the set (POST action=release) or generate again after a failure (action=retry)."""
    found = _set_or_404(course_id, set_id)
    try:
        if request.POST.get("action") == "release":
            questions.release(found)
            messages.success(request, _("The set is released: students can practise its approved questions."))
        elif request.POST.get("action") == "retry":
            questions.retry_generation(found)
            messages.success(request, _("The questions are being generated."))
        else:
            raise questions.QuestionError(_("Unknown action."))
    except questions.QuestionError as exc:
        log.info("question set %s: refused action: %s", set_id, exc)
        messages.error(request, str(exc))
    return _to_set(request, course_id, set_id)


@never_cache
@course_member(teaching=True)
def question_set_export(request, course_id, set_id, kind):
    """Download a released set as Moodle XML (kind=xml) or GIFT (kind=gift)."""
    found = _set_or_404(course_id, set_id)
    if not found.is_released:
        raise Http404(_("Only a released set can be exported."))
    return exports.download(found, kind)


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
        answers = {key[2:]: value for key, value in request.POST.items() if key.startswith("q-")}
        try:
            attempt = practice.submit(found, request.user, answers, report=not request.membership.is_teaching)
        except practice.PracticeError as exc:
            log.info("practice: refused submission to set %s: %s", set_id, exc)
            messages.error(request, str(exc))
        else:
            return redirect(tool_url("tutor:practice-result", course_id, set_id, attempt.pk,
                                     token=request.launch_token))
    return render(request, "tutor/practice_set.html", {
        "course": request.course, "set": found, "questions": questions.released_questions(found),
        "graded": practice.is_graded(found), "is_teaching": request.membership.is_teaching,
        "earlier": Attempt.objects.filter(question_set=found, user=request.user)[:5]})


@never_cache
@course_member()
def practice_result(request, course_id, set_id, attempt_id):
    """One's own attempt: score, right answers, explanations and the source passages."""
    attempt = get_object_or_404(Attempt.objects.select_related("question_set"), pk=attempt_id,
                                question_set_id=set_id, question_set__course_id=course_id, user=request.user)
    return render(request, "tutor/practice_result.html", {
        "course": request.course, "set": attempt.question_set, "attempt": attempt,
        "results": practice.results(attempt), "is_teaching": request.membership.is_teaching})


urlpatterns = [
    path("c/<int:course_id>/questions/", question_sets, name="questions"),
    path("c/<int:course_id>/questions/<int:set_id>/", question_set, name="question-set"),
    path("c/<int:course_id>/questions/<int:set_id>/action/", question_set_action, name="question-set-action"),
    path("c/<int:course_id>/questions/<int:set_id>/q/<int:question_id>/", question_edit, name="question-edit"),
    path("c/<int:course_id>/questions/<int:set_id>/export.xml", question_set_export, {"kind": "xml"},
         name="question-set-xml"),
    path("c/<int:course_id>/questions/<int:set_id>/export.gift", question_set_export, {"kind": "gift"},
         name="question-set-gift"),
    path("c/<int:course_id>/practice/", practice_sets, name="practice"),
    path("c/<int:course_id>/practice/<int:set_id>/", practice_set, name="practice-set"),
    path("c/<int:course_id>/practice/<int:set_id>/attempt/<int:attempt_id>/", practice_result,
         name="practice-result"),
]
