"""Moodle XML import: a lecturer's existing questions into a draft set, read the way Moodle's qformat_xml reads
them (``multichoice`` with one or several answers, ``truefalse``, ``shortanswer``, ``essay``, and a ``cloze`` or
``gapselect`` question with one gap of choices as a gap fill; other types and categories are skipped and counted). Imported questions are drafts like generated ones: the form check and the
near-duplicate check run on them, and each import is kept in the question's history.
"""

import html
import logging
import re

from bs4 import BeautifulSoup
from django.db import transaction
from django.db.models import Max
from django.utils.translation import gettext as _
from lxml import etree

from config.errors import ProblemError
from tutor.questions import item_checks, items
from tutor.questions.exports import MODEL_ANSWER_CLASS, RUBRIC_CLASS
from tutor.questions.models import Question, QuestionChange, QuestionSet
from tutor.questions.spans import GAP

log = logging.getLogger(__name__)

MAX_IMPORT_BYTES = 5 * 1024 * 1024
MAX_IMPORT_QUESTIONS = 1000


class QuestionImportError(ProblemError):
    """A file that cannot be imported; the message is for the person."""


def plain(text, fmt="html"):
    """The text a person sees of a Moodle text field (HTML or auto-format: tags dropped, entities decoded)."""
    if not text:
        return ""
    if fmt in ("html", "moodle_auto_format", "markdown", "wiki_like"):
        text = BeautifulSoup(text, "html.parser").get_text(" ")
    return " ".join(html.unescape(text).split())


def _field(node, path, default=""):
    found = node.find(path)
    return found.text if found is not None and found.text is not None else default


def _rich(node, tag):
    """(text, format) of a text field such as <questiontext format="html"><text>…</text></questiontext>."""
    found = node.find(tag)
    if found is None:
        return "", "html"
    return _field(found, "text"), found.get("format", "html")


def _fraction(answer):
    try:
        return float(answer.get("fraction", "0"))
    except ValueError:
        return 0.0


# qtype_multianswer_extract_question's expressions (question/type/multianswer/questiontype.php)
_FRACTION = r"=|%(-?[0-9]+(?:[.,][0-9]*)?)%"
_ALTERNATIVE = rf"({_FRACTION})?(.+?(?<!\\)(?<!&)(?<!&amp;)(?=[~#}}]|$))(#(.*?(?<!\\)(?=[~}}]|$)))?"
_CLOZE_TYPES = ("(NUMERICAL|NM)|(MULTICHOICE|MC)|(MULTICHOICE_V|MCV)|(MULTICHOICE_H|MCH)|(SHORTANSWER|SA|MW)|"
                "(SHORTANSWER_C|SAC|MWC)|(MULTICHOICE_S|MCS)|(MULTICHOICE_VS|MCVS)|(MULTICHOICE_HS|MCHS)|"
                "(MULTIRESPONSE|MR)|(MULTIRESPONSE_H|MRH)|(MULTIRESPONSE_S|MRS)|(MULTIRESPONSE_HS|MRHS)")
CLOZE_QUESTION = re.compile(rf"\{{([0-9]*):({_CLOZE_TYPES}):(({_ALTERNATIVE})(~({_ALTERNATIVE}))*)\}}", re.S)
CLOZE_ALTERNATIVE = re.compile(rf"~?{_ALTERNATIVE}", re.S)
_SINGLE_CHOICE_GROUPS = (4, 5, 6, 9, 10, 11)  # MULTICHOICE, its layouts and shuffled forms


def cloze_parts(text):
    """[(match, type group, [(answer text, fraction)])] of a Cloze question text, in order, read as Moodle does
    (answers entity-decoded, '\\}' and '\\#' unescaped)."""
    found = []
    for match in CLOZE_QUESTION.finditer(text):
        group = next((g for g in range(3, 16) if match.group(g)), 0)
        remaining, answers = match.group(16), []
        while remaining:
            alternative = CLOZE_ALTERNATIVE.match(remaining)
            if alternative is None or not alternative.group(0):
                break
            fraction = 1.0 if alternative.group(1) == "=" else (
                float(alternative.group(2).replace(",", ".")) / 100 if alternative.group(2) else 0.0)
            answer = html.unescape(alternative.group(3)).replace("\\}", "}").replace("\\#", "#")
            answers.append((answer, fraction))
            remaining = remaining[alternative.end():]
        found.append((match, group, answers))
    return found


def _gap_fill(question, text, options, correct, fmt):
    """Fill a gap-fill question from its text (the gap already replaced by GAP) and its options."""
    question.kind = Question.GAP_FILL
    question.stem = plain(text, fmt)
    question.options, question.correct_index = options, correct


def _read_cloze(question, text, fmt):
    parts = cloze_parts(text)
    if len(parts) != 1 or parts[0][1] not in _SINGLE_CHOICE_GROUPS:
        return "cloze"
    match, _group, answers = parts[0]
    right = [i for i, (_a, fraction) in enumerate(answers) if fraction == 1.0]
    _gap_fill(question, text[:match.start()] + GAP + text[match.end():], [plain(a, "html") for a, _f in answers],
              right[0] if len(right) == 1 else -1, fmt)
    return None


def _read_gapselect(question, node, text, fmt):
    gaps = re.findall(r"\[\[(\d+)]]", text)
    choices = [(_field(o, "text"), _field(o, "group", "1").strip()) for o in node.findall("selectoption")]
    if len(gaps) != 1 or not gaps[0].isdigit() or not 1 <= int(gaps[0]) <= len(choices):
        return "gapselect"
    key, group = choices[int(gaps[0]) - 1]
    options = [" ".join(c.split()) for c, g in choices if g == group]
    _gap_fill(question, text.replace(f"[[{gaps[0]}]]", GAP), options, options.index(" ".join(key.split())), fmt)
    return None


def read_question(node):
    """(unsaved Question, None) for one <question> element, or (None, the reason it is skipped)."""
    qtype = node.get("type", "")
    if qtype not in ("multichoice", "truefalse", "shortanswer", "essay", "cloze", "gapselect"):
        return None, qtype or "?"
    if qtype in ("cloze", "gapselect"):
        text, fmt = _rich(node, "questiontext")
        feedback, feedback_fmt = _rich(node, "generalfeedback")
        question = Question(explanation=plain(feedback, feedback_fmt), origin=Question.IMPORTED)
        skipped = (_read_cloze(question, text, fmt) if qtype == "cloze"
                   else _read_gapselect(question, node, text, fmt))
        return (None, f"{qtype} (not one gap of choices)") if skipped else (question, None)
    stem, fmt = _rich(node, "questiontext")
    feedback, feedback_fmt = _rich(node, "generalfeedback")
    question = Question(stem=plain(stem, fmt), explanation=plain(feedback, feedback_fmt), origin=Question.IMPORTED)
    answers = node.findall("answer")
    if qtype == "multichoice":
        single = _field(node, "single", "true").strip().lower() not in ("false", "0", "")
        question.options = [plain(_field(a, "text"), a.get("format", fmt)) for a in answers]
        correct = [i for i, a in enumerate(answers) if _fraction(a) > 0]
        if single:
            question.kind = Question.SINGLE
            best = max(range(len(answers)), key=lambda i: _fraction(answers[i]), default=-1)
            question.correct_index = best if best >= 0 and _fraction(answers[best]) > 0 else -1
        else:
            question.kind, question.correct_indices = Question.MULTIPLE, correct
    elif qtype == "truefalse":
        question.kind = Question.TRUE_FALSE
        for position, answer in enumerate(answers):
            text = _field(answer, "text").strip()
            is_true = text == "true" or (text != "false" and position == 0)  # Moodle's rule for old files too
            if _fraction(answer) == 100:
                question.truth = is_true
    elif qtype == "shortanswer":
        question.kind = Question.SHORT
        question.case_sensitive = _field(node, "usecase", "0").strip() == "1"
        question.accepted_answers = [_field(a, "text").strip() for a in answers if _fraction(a) == 100]
    else:
        question.kind = Question.OPEN
        info, info_fmt = _rich(node, "graderinfo")
        soup = BeautifulSoup(info or "", "html.parser")
        model, rubric = soup.find(class_=MODEL_ANSWER_CLASS), soup.find(class_=RUBRIC_CLASS)
        if model is not None or rubric is not None:
            question.model_answer = plain(str(model)) if model is not None else ""
            question.rubric = "\n".join(plain(str(li)) for li in rubric.find_all("li")) if rubric is not None else ""
        else:  # a lecturer's own information for graders: their rubric
            question.rubric = plain(info, info_fmt)
    return question, None


def parse(data):
    """(questions, {skipped type: count}) of a Moodle XML file's bytes; QuestionImportError when it cannot be read."""
    if len(data) > MAX_IMPORT_BYTES:
        raise QuestionImportError(_("The file is larger than %(mb)d MB.") % {"mb": MAX_IMPORT_BYTES // (1024 * 1024)})
    if b"<!DOCTYPE" in data[:4096].upper() or b"<!ENTITY" in data.upper():
        raise QuestionImportError(_("The file declares a document type; Moodle XML files do not."))
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        log.info("question import: not readable XML: %s", exc.msg)  # the parser's English detail: the log's
        raise QuestionImportError(_("This is not a readable XML file (the error is in line %(line)d).") % {
            "line": exc.lineno or 1}) from exc
    if root.tag != "quiz":
        raise QuestionImportError(_("This is not a Moodle XML question file (it has no <quiz> element)."))
    questions, skipped = [], {}
    for node in root.findall("question")[:MAX_IMPORT_QUESTIONS]:
        if node.get("type") == "category":
            continue
        question, reason = read_question(node)
        if question is None:
            skipped[reason] = skipped.get(reason, 0) + 1
        else:
            questions.append(question)
    return questions, skipped


def import_moodle_xml(question_set, data, user=None):
    """Add a Moodle XML file's questions to a draft set: usable ones as drafts with their checks (form,
    near-duplicate) on them; returns {"imported", "unusable" (with reasons), "skipped" (type: count)}."""
    if question_set.is_released:
        raise QuestionImportError(_("A released set can no longer be changed."))
    found, skipped = parse(data)
    usable, unusable = [], []
    for question in found:
        problems = items.form_problems(question)
        hard = [code for code, _detail in problems if code in items.HARD]
        if hard:
            unusable.append((question.stem[:120], item_checks.describe_reason(item_checks.FORM, hard[0])))
            continue
        records = item_checks.form_records(problems)
        records.append(item_checks.record(item_checks.GROUNDED, None, "not_checked"))
        usable.append((question, records))
    item_checks.embed([q for q, _records in usable], question_set.course_id)
    with transaction.atomic():
        start = (question_set.questions.aggregate(m=Max("position"))["m"] or 0) + 1
        for number, (question, records) in enumerate(usable):
            records.append(item_checks.duplicate(question, question_set.course_id, [q for q, _r in usable[:number]]))
            item_checks.apply(question, records)
            question.question_set, question.position = question_set, start + number
        created = Question.objects.bulk_create([q for q, _records in usable])
        QuestionChange.objects.bulk_create([QuestionChange(question=q, user=user if getattr(user, "pk", None) else None,
                                                           action="imported") for q in created])
    log.info("question set %s: imported %d questions, %d unusable, skipped %s", question_set.pk, len(created),
             len(unusable), skipped)
    return {"imported": len(created), "unusable": unusable, "skipped": skipped}


def import_file(course, name, data, user=None, question_set=None, title=""):
    """Import a Moodle XML file into a draft set of the course: the given one, or a new one with the title given (else
    named after the file; removed again when the file cannot be imported). Returns (the set, import_moodle_xml's
    result)."""
    new = question_set is None
    if new:
        title = " ".join((title or "").split())[:255] or _("Imported: %(name)s") % {"name": name[:200]}
        question_set = QuestionSet.objects.create(course=course, title=title, generation=QuestionSet.DONE,
                                                  created_by=user, requested=0)
    try:
        result = import_moodle_xml(question_set, data, user)
    except QuestionImportError:
        if new:
            question_set.delete()
        raise
    QuestionSet.objects.filter(pk=question_set.pk).update(requested=question_set.questions.count())
    return question_set, result
