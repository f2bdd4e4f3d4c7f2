"""Exports of a released question set for the LMS's own question bank, Moodle XML and GIFT, for every kind:
multiple choice with one answer (Moodle ``multichoice``, single) or several (``multichoice``, not single, the
correct options sharing 100 %, the wrong ones taking it back), ``truefalse``, ``shortanswer`` (``usecase`` 1 when
case matters) and ``essay`` (the model answer and rubric as the grader's information).

Field names are those Moodle's ``question/format/xml/format.php`` and ``question/format/gift/format.php`` read.
Text Moodle shows as HTML is HTML-escaped (in GIFT it says ``[html]``: Moodle would read auto-format text, where
"<niedrig>" vanishes); a short answer's accepted answers are plain text compared with what a student types, so they
are never HTML-escaped. GIFT has no field for an essay's grader information (its general feedback carries the model
answer) nor for case-sensitive short answers (Moodle reads them as case-insensitive): Moodle XML keeps both.
"""

import re
import xml.etree.ElementTree as ET

from django.http import HttpResponse
from django.utils.html import escape
from django.utils.http import content_disposition_header

from tutor.questions.models import Question
from tutor.questions.review import released_questions

# Moodle's grade options (question_bank::fraction_options_full) that split 100 % among 1 to 6 options
_SHARES = {1: "100", 2: "50", 3: "33.33333", 4: "25", 5: "20", 6: "16.66667"}
MODEL_ANSWER_CLASS, RUBRIC_CLASS = "tutor-model-answer", "tutor-rubric"


def fractions(question):
    """Each option's fraction (percent, as Moodle writes it) of a multiple-choice question."""
    if question.kind == Question.SINGLE:
        return ["100" if i == question.correct_index else "0" for i in range(len(question.options))]
    correct = question.correct_set
    right, wrong = _SHARES[len(correct)], _SHARES.get(len(question.options) - len(correct), "0")
    return [right if i in correct else f"-{wrong}" for i in range(len(question.options))]


def _html(text):
    return f"<p>{escape(text)}</p>" if text else ""


def grader_info(question):
    """An essay's model answer and rubric as the HTML of Moodle's information for graders (marked so that an import
    finds the two again)."""
    rubric = "".join(f"<li>{escape(line)}</li>" for line in question.rubric.splitlines() if line.strip())
    parts = []
    if question.model_answer:
        parts.append(f'<div class="{MODEL_ANSWER_CLASS}"><p>{escape(question.model_answer)}</p></div>')
    if rubric:
        parts.append(f'<div class="{RUBRIC_CLASS}"><ul>{rubric}</ul></div>')
    return "".join(parts)


def _text(parent, tag, value, **attributes):
    node = ET.SubElement(parent, tag, attributes)
    ET.SubElement(node, "text").text = value
    return node


def _answer(node, text, fraction, fmt="html"):
    answer = _text(node, "answer", text, fraction=fraction, format=fmt)
    _text(answer, "feedback", "", format="html")


def xml_question(quiz, number, question):
    """One question as Moodle XML under the <quiz> element."""
    node = ET.SubElement(quiz, "question", type="multichoice" if question.is_choice else question.kind)
    _text(node, "name", question_name(number, question))
    _text(node, "questiontext", _html(question.stem), format="html")
    _text(node, "generalfeedback", _html(question.explanation), format="html")
    for tag, value in (("defaultgrade", "1"), ("penalty", "1" if question.kind == Question.TRUE_FALSE else "0.3333333"),
                       ("hidden", "0")):
        ET.SubElement(node, tag).text = value
    if question.is_choice:
        for tag, value in (("single", "true" if question.kind == Question.SINGLE else "false"),
                           ("shuffleanswers", "true"), ("answernumbering", "abc"), ("showstandardinstruction", "0")):
            ET.SubElement(node, tag).text = value
        for option, fraction in zip(question.options, fractions(question), strict=True):
            _answer(node, escape(option), fraction)
    elif question.kind == Question.TRUE_FALSE:
        _answer(node, "true", "100" if question.truth else "0", "moodle_auto_format")
        _answer(node, "false", "0" if question.truth else "100", "moodle_auto_format")
    elif question.kind == Question.SHORT:
        ET.SubElement(node, "usecase").text = "1" if question.case_sensitive else "0"
        for accepted in question.accepted_answers:
            _answer(node, accepted, "100", "moodle_auto_format")
    else:
        for tag, value in (("responseformat", "editor"), ("responserequired", "1"), ("responsefieldlines", "10"),
                           ("attachments", "0"), ("attachmentsrequired", "0")):
            ET.SubElement(node, tag).text = value
        _text(node, "graderinfo", grader_info(question), format="html")
        _text(node, "responsetemplate", "", format="html")
    return node


def moodle_xml(question_set, questions=None):
    """The approved questions of a released set (or the given questions) as a Moodle XML quiz file (bytes, UTF-8)."""
    quiz = ET.Element("quiz")
    category = ET.SubElement(quiz, "question", type="category")
    _text(category, "category", f"$course$/top/{question_set.title}")
    for number, question in enumerate(released_questions(question_set) if questions is None else questions, start=1):
        xml_question(quiz, number, question)
    ET.indent(quiz)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(quiz, encoding="utf-8") + b"\n"


_GIFT_SPECIAL = re.compile(r"([~=#{}:\\])")


def _gift_plain(text):
    """Plain text for GIFT: its own characters escaped, on one line."""
    return _GIFT_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def _gift(text):
    """Text for a GIFT file whose question is in HTML format: HTML-escaped (Moodle reads GIFT text as HTML, so
    "<niedrig>" or "#include <stdio.h>" would vanish otherwise), then GIFT's own characters escaped."""
    return _gift_plain(escape(" ".join(text.split())))


def question_name(number, question):
    """A question's name in the LMS's question bank: its number in the set and the start of its text."""
    stem = " ".join(question.stem.split())
    return f"{number:02d} {stem[:60]}{'…' if len(stem) > 60 else ''}"


def gift_question(number, question):
    """One question in GIFT (it says [html]: its text, answers and feedback are HTML, as they are)."""
    feedback = question.explanation
    if question.kind == Question.OPEN and not feedback:
        feedback = question.model_answer
    general = f"\n####{_gift(feedback)}" if feedback else ""
    head = f"::{_gift(question_name(number, question))}::[html]{_gift(question.stem)} "
    if question.kind == Question.SINGLE:
        body = "\n".join(("=" if i == question.correct_index else "~") + _gift(option)
                         for i, option in enumerate(question.options))
    elif question.kind == Question.MULTIPLE:
        body = "\n".join(f"~%{fraction}%{_gift(option)}"
                         for option, fraction in zip(question.options, fractions(question), strict=True))
    elif question.kind == Question.TRUE_FALSE:
        body = "TRUE" if question.truth else "FALSE"
    elif question.kind == Question.SHORT:
        body = "\n".join(f"=%100%{_gift_plain(accepted)}" for accepted in question.accepted_answers)
    else:
        body = ""
    return f"{head}{{\n{body}{general}\n}}" if body else f"{head}{{{general.lstrip()}}}"


def gift(question_set, questions=None):
    """The approved questions of a released set (or the given questions) in Moodle's GIFT format (text)."""
    blocks = [f"$CATEGORY: $course$/top/{_gift(question_set.title)}"]
    for number, question in enumerate(released_questions(question_set) if questions is None else questions, start=1):
        blocks.append(gift_question(number, question))
    return "\n\n".join(blocks) + "\n"


def filename(question_set, extension):
    """A safe download name for the set."""
    stem = re.sub(r"[^\w-]+", "-", question_set.title, flags=re.UNICODE).strip("-")[:60] or "questions"
    return f"{stem}.{extension}"


FILES = {"xml": (moodle_xml, "application/xml; charset=utf-8", "xml"),
         "gift": (gift, "text/plain; charset=utf-8", "gift.txt")}


def download(question_set, kind):
    """A released set as a file to download (a response): Moodle XML (kind "xml") or GIFT ("gift")."""
    write, content_type, extension = FILES[kind]
    response = HttpResponse(write(question_set), content_type=content_type)
    response["Content-Disposition"] = content_disposition_header(True, filename(question_set, extension))
    return response
