"""Question sets: which sections questions are asked about, the lecturer's review (edit every field, approve or
reject one by one or many at once, every change kept with who and when), and release.

Writing the questions is tutor.questions.generation's work (a task per section, checks before anyone sees a
question); this module starts it for a set (``start_generation``) and queues what is missing again
(``retry_generation``).
"""

import logging

from django.db import transaction
from django.db.models import Count
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from config import errors
from config.errors import ProblemError
from courses import sections as course_sections
from courses.parsing import PATH_SEPARATOR
from tutor.questions import generation, item_checks, items, quotas
from tutor.questions.models import GenerationPart, Question, QuestionChange, QuestionSet

log = logging.getLogger(__name__)

MAX_QUESTIONS = 20
MIN_OPTIONS, MAX_OPTIONS = items.MIN_OPTIONS, items.MAX_OPTIONS
STALLED_AFTER = generation.STALLED_AFTER


class QuestionError(ProblemError):
    """A lecturer's request that cannot be carried out; the message is for the person."""


def error_message(question_set):
    """Why generation failed, in the reader's language ('' when it did not)."""
    if question_set.generation != QuestionSet.FAILED:
        return ""
    return errors.error_message(errors.QUESTIONS, question_set.generation_error)


def part_error(part):
    """Why one section's generation failed, in the reader's language ('' when it did not)."""
    return errors.error_message(errors.QUESTIONS, part.error) if part.state == GenerationPart.FAILED else ""


def sections_of(course):
    """The course's sections that have indexed text, in document order, for the lecturer's picker."""
    return course_sections.sections_with_text(course)


def section_tree(course):
    """The picker's tree: [{document, count, chapters: [{title, key, sections}]}] of the sections with text, each
    under its chapter (the first part of its heading path; a chapter's key names the run of its sections)."""
    counts = dict(Question.objects.filter(question_set__course=course, source_section__isnull=False)
                  .exclude(review=Question.REJECTED).order_by().values("source_section_id")
                  .annotate(n=Count("id")).values_list("source_section_id", "n"))
    tree = []
    for section in sections_of(course):
        if not tree or tree[-1]["document"].pk != section.document_id:
            tree.append({"document": section.document, "chapters": [], "count": 0})
        document = tree[-1]
        path = section.path.split(PATH_SEPARATOR)
        title = path[0] if len(path) > 1 else section.title
        if not document["chapters"] or document["chapters"][-1]["title"] != title:
            document["chapters"].append({"title": title, "sections": [], "first": section.order})
        chapter = document["chapters"][-1]
        section.questions = counts.get(section.pk, 0)
        chapter["sections"].append(section)
        chapter["key"] = f"{section.document_id}:{chapter['first']}:{section.order}"
        document["count"] += 1
    return tree


# --- Starting a generation -----------------------------------------------------------------------------------

def start_generation(course, section_ids, count, user=None, title="", kinds=None):
    """A new draft set of `count` questions about the chosen sections of this course (shared among them), queued
    for generation one section at a time; they count against the person's budget (tutor.questions.quotas)."""
    sections = list(sections_of(course).filter(pk__in=[int(s) for s in section_ids if str(s).isdigit()]))
    if not sections:
        raise QuestionError(_("Please choose a section of the course texts."))
    try:
        count = int(count)
    except (TypeError, ValueError):
        count = 0
    if not 1 <= count <= MAX_QUESTIONS:
        raise QuestionError(_("Please ask for between 1 and %(max)d questions.") % {"max": MAX_QUESTIONS})
    title = (title or "").strip()[:255] or sections[0].title[:255] or sections[0].document.title
    with transaction.atomic():
        question_set = generation._new_set(course, title, count, items.parse_kinds(kinds), user, sections,
                                           section=sections[0] if len(sections) == 1 else None)
        parts = generation.ensure_parts(question_set)
        quotas.spend(course, user, count)  # over the person's budget: QuotaExceeded, the set is not kept
        generation.enqueue([p.pk for p in parts])
    return question_set


def retry_generation(question_set):
    """Queue again what the set still misses (failed, stalled or short sections); a set that lacks nothing, is
    being generated or is released is left as it is."""
    if question_set.is_released:
        raise QuestionError(_("A released set can no longer be changed."))
    with transaction.atomic():
        if not generation.requeue(generation.ensure_parts(question_set)):
            raise QuestionError(_("These questions are already generated or being generated."))


def generation_summary(question_set):
    """Asked for, made and dropped (with the reasons, worded for the reader) over the set's sections."""
    summary = generation.progress(list(question_set.parts.all()))
    summary["reasons"] = [(generation.reason_label(code), n) for code, n in summary["reasons"].items()]
    return summary


# --- Review and release -------------------------------------------------------------------------------

EDITABLE = ["stem", "options", "correct_index", "correct_indices", "truth", "accepted_answers", "case_sensitive",
            "model_answer", "rubric", "explanation"]


ACTIONS = {"generated": gettext_lazy("written by the model"), "edited": gettext_lazy("edited"),
           "approved": gettext_lazy("approved"), "rejected": gettext_lazy("rejected"),
           "draft": gettext_lazy("set back to not reviewed"), "regenerated": gettext_lazy("rewritten by the model"),
           "imported": gettext_lazy("imported"), "revision_failed": gettext_lazy("the model's rewrite failed"),
           "revision_dropped": gettext_lazy("the model's rewrite came after the release and was not used")}


def change_label(action):
    """A history entry's action in the reader's language."""
    return str(ACTIONS.get(action, action))


def _editable(question_set):
    if question_set.is_released:
        raise QuestionError(_("A released set can no longer be changed."))


def snapshot(question):
    """The fields a lecturer can change, as they are now (to record what a change changed)."""
    return {name: getattr(question, name) for name in EDITABLE}


def record_change(question, user, action, before=None):
    """Keep one change of a question in its history: who, when, and each changed field's before and after."""
    after = snapshot(question)
    changes = {k: [before[k], after[k]] for k in EDITABLE if before is not None and before[k] != after[k]}
    return QuestionChange.objects.create(question=question, user=user if getattr(user, "pk", None) else None,
                                         action=action, changes=changes)


def _lines(value):
    if isinstance(value, str):
        value = value.splitlines()
    return [items.clean(v) for v in value or () if items.clean(v)]


def edit_question(question, stem, options, correct_index, explanation, *, user=None, correct_indices=None,
                  truth=None, accepted_answers=None, case_sensitive=None, model_answer=None, rubric=None):
    """Save the lecturer's version of a question (every field of its kind); refused when it is unusable (no text,
    too few or equal options, no correct answer), kept and flagged when it breaks a rule of good form. The form and
    grounding checks run again; the others are marked as made before the edit. Recorded in the history."""
    _editable(question.question_set)
    before = snapshot(question)
    question.stem, question.explanation = items.clean(stem), items.clean(explanation)
    if question.is_choice:
        question.options = _lines(options)
        try:
            question.correct_index = int(correct_index) if question.kind in Question.ONE_ANSWER_KINDS else 0
        except (TypeError, ValueError):
            question.correct_index = -1
        if question.kind == Question.MULTIPLE:
            question.correct_indices = sorted({int(c) for c in correct_indices or () if str(c).lstrip("-").isdigit()})
    elif question.kind == Question.TRUE_FALSE:
        question.truth = {"true": True, "false": False, True: True, False: False}.get(truth)
    elif question.kind == Question.SHORT:
        question.accepted_answers = _lines(accepted_answers)
        question.case_sensitive = bool(case_sensitive)
    elif question.kind == Question.OPEN:
        question.model_answer = (model_answer or "").strip()
        question.rubric = (rubric or "").strip()
    problems = items.form_problems(question)
    hard = [code for code, _detail in problems if code in items.HARD]
    if hard:
        question.refresh_from_db()
        raise QuestionError(_("This question cannot be saved: %(reason)s")
                            % {"reason": item_checks.describe_reason(item_checks.FORM, hard[0])})
    recheck(question, problems)
    question.edited = True
    question.save()
    record_change(question, user, "edited", before)
    return question


def recheck(question, problems=None):
    """Run the form and grounding checks again on a changed question; mark the others as made before the change."""
    records = item_checks.form_records(items.form_problems(question) if problems is None else problems)
    if question.source_chunk_id:
        passages = course_sections.section_passages(question.source_chunk.section_id, question.question_set.course_id)
        records.append(item_checks.grounded(question, passages))
    for check in question.checks or []:
        if check.get("check") not in (item_checks.FORM, item_checks.GROUNDED):
            check["stale"] = True
    item_checks.apply(question, records)


def save_revision(question, what, text, user_id=None):
    """Put the model's new wrong option or explanation into the question (checked again, kept in the history);
    a set released while the model was writing stays as released (the rewrite is dropped and recorded)."""
    user = None
    if user_id:
        from django.contrib.auth import get_user_model

        user = get_user_model().objects.filter(pk=user_id).first()
    with transaction.atomic():
        # the set's row lock orders this against release(): a set released first is not changed any more
        released = QuestionSet.objects.select_for_update().get(pk=question.question_set_id).is_released
        question = Question.objects.select_for_update().get(pk=question.pk)
        if released:
            Question.objects.filter(pk=question.pk).update(revising="")
            QuestionChange.objects.create(question=question, user=user, action="revision_dropped",
                                          changes={what: ["released", ""]})
            return question
        before = snapshot(question)
        kind, _sep, index = what.partition(":")
        if kind == "option" and index.isdigit() and int(index) < len(question.options):
            question.options = [text if i == int(index) else o for i, o in enumerate(question.options)]
        elif kind == "explanation":
            question.explanation = text
        question.revising = ""
        recheck(question)
        question.save()
        record_change(question, user, "regenerated", before)
    return question


def review_question(question, decision, user=None):
    """Approve, reject or reset ('draft') one question (kept in its history)."""
    _editable(question.question_set)
    if decision not in (Question.APPROVED, Question.REJECTED, Question.DRAFT):
        raise QuestionError(_("Please approve or reject the question."))
    if question.review != decision:
        Question.objects.filter(pk=question.pk).update(review=decision)
        QuestionChange.objects.create(question=question, user=user if getattr(user, "pk", None) else None,
                                      action=decision)


def review_many(question_set, question_ids, decision, user=None):
    """Approve or reject many questions of a set at once; the number changed."""
    _editable(question_set)
    if decision not in (Question.APPROVED, Question.REJECTED, Question.DRAFT):
        raise QuestionError(_("Please approve or reject the question."))
    ids = [int(i) for i in question_ids if str(i).isdigit()]
    if not ids:
        raise QuestionError(_("Please select at least one question."))
    with transaction.atomic():
        changed = list(question_set.questions.filter(pk__in=ids).exclude(review=decision).values_list("pk", flat=True))
        Question.objects.filter(pk__in=changed).update(review=decision)
        QuestionChange.objects.bulk_create([QuestionChange(question_id=pk, user=user if getattr(user, "pk", None)
                                                           else None, action=decision) for pk in changed])
    return len(changed)


def set_details(question_set, title, shuffle_options):
    """Name the set (what students and the LMS see) and say whether its options are shuffled for each student and
    attempt; QuestionError (for the person) for an empty title."""
    title = " ".join((title or "").split())[:255]
    if not title:
        raise QuestionError(_("Please give the set a title."))
    question_set.title, question_set.shuffle_options = title, bool(shuffle_options)
    question_set.save(update_fields=["title", "shuffle_options"])
    return question_set


def release(question_set):
    """Make the set visible to students with its approved questions; needs at least one."""
    if question_set.is_released:
        return question_set
    if not question_set.questions.approved().exists():
        raise QuestionError(_("Approve at least one question before releasing the set."))
    question_set.status, question_set.released_at = QuestionSet.RELEASED, timezone.now()
    question_set.save(update_fields=["status", "released_at"])
    return question_set


def released_questions(question_set):
    """The questions students see: the approved ones of a released set, in order."""
    if not question_set.is_released:
        return Question.objects.none()
    return question_set.questions.approved().order_by("position")
