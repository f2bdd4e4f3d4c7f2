"""The lecturer's Questions pages: the section tree where generation starts (a section, chapters or a whole text),
the progress of a whole-text run, a set's review (checks and their reasons, edit, rewrite, bulk review, history,
release, grading rule), import and export, and the item statistics.

Thin views: the work is in tutor.questions.review, tutor.questions.generation, tutor.questions.practice,
tutor.questions.imports, tutor.questions.exports and tutor.questions.item_stats. Every view here needs
``course_member(teaching=True)``.
"""

import logging

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from courses import sections as course_sections
from courses.access import course_member, tool_url
from tutor.models import TutorConfig
from tutor.questions import (
    exports,
    generation,
    item_checks,
    item_stats,
    items,
    open_feedback,
    practice,
    quotas,
    review,
)
from tutor.questions.imports import MAX_IMPORT_BYTES, QuestionImportError, import_file
from tutor.questions.models import GenerationRun, OpenAnswerFeedback, Question, QuestionSet

log = logging.getLogger(__name__)


def _set_or_404(course_id, set_id):
    return get_object_or_404(QuestionSet, pk=set_id, course_id=course_id)


def _to(request, name, *args):
    return redirect(tool_url(name, request.course.pk, *args))


class ChecksForm:
    """The course's settings of the test student and of how questions are written (a small form over TutorConfig's
    fields)."""

    @staticmethod
    def save(config, data):
        """Store the posted mode and number of tries; ValueError with a message for the person."""
        mode, tries = data.get("question_test_student"), data.get("question_test_tries", "")
        if mode not in dict(TutorConfig.TEST_STUDENT) or not str(tries).isdigit() or not 1 <= int(tries) <= 5:
            raise ValueError(_("Please choose what the test student does and between 1 and 5 tries."))
        method = data.get("question_method") or config.question_method
        if method not in dict(TutorConfig.QUESTION_METHODS):
            raise ValueError(_("Please choose how questions are written."))
        config.question_test_student, config.question_test_tries = mode, int(tries)
        config.question_method = method
        config.save(update_fields=["question_test_student", "question_test_tries", "question_method", "updated_at"])


# --- The Questions page: sets, the section tree, import, the checks' settings -------------------------------

@never_cache
@course_member(teaching=True)
def question_sets(request, course_id):
    """The course's question sets and runs, the section tree to generate from (POST: generate), the import form
    and the test student's settings."""
    if request.method == "POST":
        return _start(request, course_id)
    course = request.course
    return render(request, "tutor/questions.html", {
        "course": course,
        "sets": QuestionSet.objects.filter(course=course).with_origins(),
        "runs": GenerationRun.objects.filter(course=course)[:10], "tree": review.section_tree(course),
        "kinds": Question.KINDS, "max_per_section": generation.MAX_PER_SECTION,
        "default_kinds": items.default_kinds(TutorConfig.for_course(course)),
        "weak_model": TutorConfig.for_course(course).model_name in settings.CHAT_WEAK_MODELS,
        "draft_sets": QuestionSet.objects.filter(course=course, status=QuestionSet.DRAFT),
        "config": TutorConfig.for_course(course), "test_student_modes": TutorConfig.TEST_STUDENT,
        "question_methods": TutorConfig.QUESTION_METHODS, "budget": quotas.summary(course, request.user)})


def _start(request, course_id):
    post = request.POST
    sections = course_sections.chosen_sections(request.course, post.getlist("section"), post.getlist("chapter"),
                                          post.getlist("document"))
    try:
        run = generation.start_run(request.course, sections, post.get("count", ""), post.getlist("kind"),
                                   one_set=post.get("mode", "one") == "one", user=request.user,
                                   title=post.get("title", ""))
    except (generation.GenerationError, quotas.QuotaExceeded) as exc:
        log.info("questions: refused generation in course %s: %s", course_id, exc)
        messages.error(request, str(exc))
        return _to(request, "tutor:questions")
    sets = list(QuestionSet.objects.filter(parts__run=run).distinct())
    if not sets:
        messages.error(request, _("Every chosen section already has a released set; nothing was generated."))
        return _to(request, "tutor:questions")
    messages.success(request, _("The questions are being generated."))
    if len(sets) == 1:
        return _to(request, "tutor:question-set", sets[0].pk)
    return _to(request, "tutor:generation-run", run.pk)


@require_POST
@course_member(teaching=True)
def question_checks(request, course_id):
    """Save the course's test student settings (off, flag, drop; tries)."""
    try:
        ChecksForm.save(TutorConfig.for_course(request.course), request.POST)
        messages.success(request, _("The settings of the checks were saved."))
    except ValueError as exc:
        messages.error(request, str(exc))
    return _to(request, "tutor:questions")


@require_POST
@course_member(teaching=True)
def questions_import(request, course_id):
    """Import a Moodle XML file into a draft set (a new one unless one is chosen)."""
    upload = request.FILES.get("file")
    target = request.POST.get("set", "")
    if upload is None:
        messages.error(request, _("Please choose a Moodle XML file."))
        return _to(request, "tutor:questions")
    chosen = get_object_or_404(QuestionSet, pk=int(target), course=request.course) if target.isdigit() else None
    try:
        question_set, result = import_file(request.course, upload.name, upload.read(MAX_IMPORT_BYTES + 1),
                                           request.user, chosen, title=request.POST.get("title", ""))
    except QuestionImportError as exc:
        log.info("questions: import refused in course %s: %s", course_id, exc)
        messages.error(request, str(exc))
        return _to(request, "tutor:questions")
    text = ngettext("%(n)d question was imported.", "%(n)d questions were imported.", result["imported"]) % {
        "n": result["imported"]}
    if result["unusable"]:
        text += " " + _("Not imported: %(list)s.") % {"list": "; ".join(f"“{s}” ({why})" for s, why in
                                                                        result["unusable"][:5])}
    if result["skipped"]:
        text += " " + _("Skipped question types: %(types)s.") % {"types": ", ".join(
            f"{kind} ({n})" for kind, n in result["skipped"].items())}
    messages.success(request, text)
    return _to(request, "tutor:question-set", question_set.pk)


# --- A whole-text run --------------------------------------------------------------------------------------

def _run_or_404(course_id, run_id):
    return get_object_or_404(GenerationRun, pk=run_id, course_id=course_id)


@never_cache
@course_member(teaching=True)
def generation_run(request, course_id, run_id):
    """A whole-text run: progress per section (polled from the API), each section's set, and 'generate what is
    missing'."""
    run = _run_or_404(course_id, run_id)
    parts = generation.run_parts(run)
    summary = generation.progress(parts)
    summary["reasons"] = [(generation.reason_label(c), n) for c, n in summary["reasons"].items()]
    for part in parts:
        part.error_text = review.part_error(part)
    return render(request, "tutor/generation_run.html", {"course": request.course, "run": run, "parts": parts,
                                                          "summary": summary})


@require_POST
@course_member(teaching=True)
def generation_run_action(request, course_id, run_id):
    """Generate again what the run's sections still miss."""
    queued = generation.rerun(_run_or_404(course_id, run_id))
    if queued:
        messages.success(request, ngettext("%(n)d section is being generated again.",
                                           "%(n)d sections are being generated again.", queued) % {"n": queued})
    else:
        messages.error(request, _("Nothing is missing: every section has its questions or is being generated."))
    return _to(request, "tutor:generation-run", run_id)


# --- One set: review ----------------------------------------------------------------------------------------

def _set_context(request, question_set):
    listed = list(question_set.questions.select_related("source_chunk", "source_section")
                  .prefetch_related("changes__user").order_by("position"))
    statistics = item_stats.item_statistics(question_set) if question_set.is_released else None
    flags = {e["question"].pk: [item_stats.flag_text(f) for f in e["flags"]] for e in statistics["items"]} \
        if statistics else {}
    for question in listed:
        question.described_checks = item_checks.described(question)
        question.statistics_flags = flags.get(question.pk, [])
        question.answer_lines = "\n".join(question.accepted_answers)
        for change in question.changes.all():
            change.label = review.change_label(change.action)
    parts = list(question_set.parts.select_related("section"))
    for part in parts:
        part.error_text = review.part_error(part)
        part.dropped_reasons = [(generation.reason_label(c), n) for c, n in part.reasons.items()]
        for item in part.dropped_items:
            item["labels"] = [generation.reason_label(r) for r in item.get("reasons", [])]
            if item.get("check"):  # worded when shown, in the reader's language
                item["detail"] = item_checks.describe(item["check"])
    return {"course": request.course, "set": question_set, "error": review.error_message(question_set),
            "questions": listed, "approved": sum(q.review == Question.APPROVED for q in listed),
            "attempts": question_set.attempts.count(), "graded": practice.is_graded(question_set),
            "stats": practice.attempt_stats(question_set), "summary": review.generation_summary(question_set),
            "parts": parts, "grading_choices": QuestionSet.GRADING, "statistics": statistics,
            "revising": any(q.is_revising for q in listed)}


@never_cache
@course_member(teaching=True)
def question_set(request, course_id, set_id):
    """Review page of one set: generation progress, what was asked for, made and dropped and why, each question
    with its checks, edit, rewrite, approve/reject, history; bulk review, release, grading rule, export."""
    return render(request, "tutor/question_set.html", _set_context(request, _set_or_404(course_id, set_id)))


def _edit_fields(post):
    return {"correct_indices": post.getlist("correct"), "truth": post.get("truth"),
            "accepted_answers": post.get("accepted", ""), "case_sensitive": post.get("case_sensitive") == "1",
            "model_answer": post.get("model_answer", ""), "rubric": post.get("rubric", "")}


@require_POST
@course_member(teaching=True)
def question_edit(request, course_id, set_id, question_id):
    """Save a lecturer's edit of a question (every field of its kind), approve/reject it (decision=approved|
    rejected|draft), or have the model rewrite a wrong option or the explanation (revise=option:<i>|explanation)."""
    found = get_object_or_404(Question.objects.select_related("question_set"), pk=question_id,
                              question_set_id=set_id, question_set__course_id=course_id)
    post = request.POST
    try:
        if post.get("decision"):
            review.review_question(found, post["decision"], request.user)
        elif post.get("revise"):
            generation.start_revision(found, post["revise"], request.user)
            messages.success(request, _("The model is rewriting it; the page shows the result when it is ready."))
        else:
            review.edit_question(found, post.get("stem", ""), post.getlist("option"), post.get("correct", ""),
                                    post.get("explanation", ""), user=request.user, **_edit_fields(post))
            messages.success(request, _("The question was saved."))
    except (review.QuestionError, generation.RevisionError) as exc:
        log.info("question %s: refused change: %s", question_id, exc)
        messages.error(request, str(exc))
    return redirect(tool_url("tutor:question-set", course_id, set_id)
                    + f"#question-{question_id}")


@require_POST
@course_member(teaching=True)
def question_set_action(request, course_id, set_id):
    """Release the set (action=release), generate what it misses (action=retry), approve or reject the selected
    questions (action=approved|rejected with question=<id>…), set its grading rule (action=grading), or its title and
    whether its options are shuffled (action=details)."""
    found = _set_or_404(course_id, set_id)
    action = request.POST.get("action")
    try:
        if action == "release":
            review.release(found)
            messages.success(request, _("The set is released: students can practise its approved questions."))
        elif action == "retry":
            review.retry_generation(found)
            messages.success(request, _("The questions are being generated."))
        elif action in (Question.APPROVED, Question.REJECTED):
            changed = review.review_many(found, request.POST.getlist("question"), action, request.user)
            messages.success(request, ngettext("%(n)d question changed.", "%(n)d questions changed.", changed)
                             % {"n": changed})
        elif action == "grading":
            practice.set_grading(found, request.POST.get("grading"), request.POST.get("attempts_allowed"))
            messages.success(request, _("The grading rule was saved."))
        elif action == "details":
            review.set_details(found, request.POST.get("title"), request.POST.get("shuffle_options") == "1")
            messages.success(request, _("The title and the order of the options were saved."))
        else:
            raise review.QuestionError(_("Unknown action."))
    except (review.QuestionError, practice.PracticeError) as exc:
        log.info("question set %s: refused action %s: %s", set_id, action, exc)
        messages.error(request, str(exc))
    return _to(request, "tutor:question-set", set_id)


@never_cache
@course_member(teaching=True)
def question_set_export(request, course_id, set_id, kind):
    """Download a released set as Moodle XML (kind=xml; xml-gapselect: gap fills as "select missing words") or
    GIFT (kind=gift)."""
    found = _set_or_404(course_id, set_id)
    if not found.is_released:
        raise Http404(_("Only a released set can be exported."))
    return exports.download(found, kind)


@never_cache
@course_member(teaching=True)
def question_set_statistics(request, course_id, set_id, as_csv=False):
    """Item statistics of a released set (difficulty, discrimination, option shares, flags); CSV with as_csv."""
    found = _set_or_404(course_id, set_id)
    statistics = item_stats.item_statistics(found)
    if as_csv:
        response = HttpResponse(item_stats.as_csv(statistics), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = content_disposition_header(True, exports.filename(found, "statistics.csv"))
        return response
    for entry in statistics["items"]:
        entry["flag_texts"] = [item_stats.flag_text(f) for f in entry["flags"]]
        entry["warn"] = any(f != "few" for f in entry["flags"])
        entry["percent_options"] = [(label, round(100 * share), right) for label, share, right in entry["options"]]
    return render(request, "tutor/question_statistics.html", {
        "course": request.course, "set": found, "statistics": statistics, "min_students": item_stats.MIN_STUDENTS})


@never_cache
@course_member(teaching=True)
def open_answers(request, course_id, set_id):
    """The answers to the set's open questions with their feedback (AI feedback, or the lecturer's own); POST saves
    the lecturer's feedback on one answer (feedback=<id>, text, credit) or whether open answers count toward the
    grade (action=counting, counted=1)."""
    found = _set_or_404(course_id, set_id)
    if request.method == "POST":
        try:
            if request.POST.get("action") == "counting":
                open_feedback.set_counting(found, request.POST.get("counted") == "1")
                messages.success(request, _("Saved whether open answers count toward the grade."))
            else:
                pk = request.POST.get("feedback", "")
                feedback = get_object_or_404(OpenAnswerFeedback, pk=int(pk) if pk.isdigit() else 0,
                                             attempt__question_set=found)
                open_feedback.override(feedback, request.user, request.POST.get("text", ""),
                                       request.POST.get("credit", ""))
                messages.success(request, _("Your feedback was saved."))
        except open_feedback.FeedbackError as exc:
            log.info("question set %s: refused feedback: %s", set_id, exc)
            messages.error(request, str(exc))
        return _to(request, "tutor:question-set-open-answers", set_id)
    return render(request, "tutor/open_answers.html", {
        "course": request.course, "set": found, "answers": open_feedback.open_answers(found)})
