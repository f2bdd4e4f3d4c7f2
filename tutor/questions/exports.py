"""Exports of a released question set for the LMS's own question bank, Moodle XML and GIFT, for every kind:
multiple choice with one answer (Moodle ``multichoice``, single) or several (``multichoice``, not single, the
correct options sharing 100 %, the wrong ones taking it back), ``truefalse``, ``shortanswer`` (``usecase`` 1 when
case matters) and ``essay`` (the model answer and rubric as the grader's information).

Field names are those Moodle's ``question/format/xml/format.php`` and ``question/format/gift/format.php`` read.
Text Moodle shows as HTML is HTML-escaped (in GIFT it says ``[html]``: Moodle would read auto-format text, where
"<niedrig>" vanishes); a short answer's accepted answers are plain text compared with what a student types, so they
are never HTML-escaped. GIFT has no field for an essay's grader information (its general feedback carries the model
answer) nor for case-sensitive short answers (Moodle reads them as case-insensitive): Moodle XML keeps both.

The gap fill goes to Moodle XML as Cloze (``type="cloze"``, one ``{1:MULTICHOICE_S:=key~wrong…}`` in the sentence,
escaped the way ``qtype_multianswer_extract_question`` reads it) or as "select missing words" (``type="gapselect"``,
``[[1]]`` in the sentence, the key as choice 1 and the wrong answers as the other choices of group 1), and to GIFT
as a missing-word question (``before {=key ~wrong …} after``, which Moodle reads as multiple choice with "_____").
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


def cloze_answer(text):
    """An option as the text of a Cloze answer: HTML-escaped (then once more, since Moodle decodes entities in an
    answer, which it shows as HTML), '}' and '#' escaped with a backslash (which Moodle takes off again), '~' and
    '\\' as character references (a backslash Moodle would keep; '&' before a '#' ends no answer)."""
    text = escape(escape(" ".join(text.split())))
    text = text.replace("\\", "&#92;").replace("~", "&#126;")
    if text[:1] in ("=", "%"):  # would be read as the right answer or a grade
        text = f"&#{ord(text[0])};{text[1:]}"
    return text.replace("}", "\\}").replace("#", "\\#").replace("&\\#", "&#")


def cloze_text(question):
    """The question text of a gap fill as Moodle's Cloze: the sentence with its one multiple-choice gap (a
    drop-down of the options in the question's order)."""
    before, after = question.gap_parts
    alternatives = "~".join(("=" if i == question.correct_index else "") + cloze_answer(option)
                            for i, option in enumerate(question.options))
    return f"<p>{escape(before)}{{1:MULTICHOICE:{alternatives}}}{escape(after)}</p>"


def gapselect_text(question):
    """The question text of a gap fill as Moodle's "select missing words": the sentence with [[1]] in its gap."""
    before, after = question.gap_parts
    return f"<p>{escape(before).replace('[[', '[&#91;')}[[1]]{escape(after).replace('[[', '[&#91;')}</p>"


def gapselect_choices(question):
    """The choices of a gap fill for "select missing words": the key first (the right choice of gap [[1]]), then
    the wrong answers, all in group 1 (the gap's drop-down)."""
    return [question.options[question.correct_index]] + [o for i, o in enumerate(question.options)
                                                         if i != question.correct_index]


def _gap_fill_xml(quiz, number, question, as_type):
    node = ET.SubElement(quiz, "question", type=as_type)
    _text(node, "name", question_name(number, question))
    text = cloze_text(question) if as_type == "cloze" else gapselect_text(question)
    _text(node, "questiontext", text, format="html")
    _text(node, "generalfeedback", _html(question.explanation), format="html")
    ET.SubElement(node, "penalty").text = "0.3333333"
    ET.SubElement(node, "hidden").text = "0"
    if as_type == "gapselect":
        ET.SubElement(node, "defaultgrade").text = "1"
        ET.SubElement(node, "shuffleanswers").text = "1"
        for tag in ("correctfeedback", "partiallycorrectfeedback", "incorrectfeedback"):
            _text(node, tag, "", format="html")
        for choice in gapselect_choices(question):
            option = ET.SubElement(node, "selectoption")
            ET.SubElement(option, "text").text = " ".join(choice.split())  # plain text: Moodle escapes it
            ET.SubElement(option, "group").text = "1"
    return node


def xml_question(quiz, number, question, gap_fill_as="cloze"):
    """One question as Moodle XML under the <quiz> element (a gap fill as "cloze" or "gapselect")."""
    if question.kind == Question.GAP_FILL:
        return _gap_fill_xml(quiz, number, question, gap_fill_as)
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


def moodle_xml(question_set, questions=None, gap_fill_as="cloze"):
    """The approved questions of a released set (or the given questions) as a Moodle XML quiz file (bytes, UTF-8);
    gap fills as Cloze or ("gapselect") as "select missing words"."""
    quiz = ET.Element("quiz")
    category = ET.SubElement(quiz, "question", type="category")
    _text(category, "category", f"$course$/top/{question_set.title}")
    for number, question in enumerate(released_questions(question_set) if questions is None else questions, start=1):
        xml_question(quiz, number, question, gap_fill_as)
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


def _gift_edges(text):
    """Like _gift, keeping one space at either end where the text has one (the text around a gap)."""
    inner = _gift(text)
    return (" " if text[:1].isspace() else "") + inner + (" " if text[-1:].isspace() and inner else "")


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
    if question.kind == Question.GAP_FILL:
        before, after = question.gap_parts
        choices = " ".join(("=" if i == question.correct_index else "~") + _gift(option)
                           for i, option in enumerate(question.options))
        # the text goes on after the answers: Moodle reads a missing word and puts "_____" in their place
        return f"::{_gift(question_name(number, question))}::[html]{_gift_edges(before)}{{{choices}{general}}}" + (
            _gift_edges(after) or ".")
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
    # Moodle takes the category as it stands (no GIFT escapes are undone there); "//" is a "/" in a category name
    blocks = [f"$CATEGORY: $course$/top/{' '.join(question_set.title.split()).replace('/', '//')}"]
    for number, question in enumerate(released_questions(question_set) if questions is None else questions, start=1):
        blocks.append(gift_question(number, question))
    return "\n\n".join(blocks) + "\n"


def filename(question_set, extension):
    """A safe download name for the set."""
    stem = re.sub(r"[^\w-]+", "-", question_set.title, flags=re.UNICODE).strip("-")[:60] or "questions"
    return f"{stem}.{extension}"


def moodle_xml_gapselect(question_set, questions=None):
    """Moodle XML with the gap fills as "select missing words" (gapselect) instead of Cloze."""
    return moodle_xml(question_set, questions, gap_fill_as="gapselect")


FILES = {"xml": (moodle_xml, "application/xml; charset=utf-8", "xml"),
         "xml-gapselect": (moodle_xml_gapselect, "application/xml; charset=utf-8", "gapselect.xml"),
         "gift": (gift, "text/plain; charset=utf-8", "gift.txt")}


def download(question_set, kind):
    """A released set as a file to download (a response): Moodle XML (kind "xml", gap fills as Cloze;
    "xml-gapselect", as "select missing words") or GIFT ("gift")."""
    write, content_type, extension = FILES[kind]
    response = HttpResponse(write(question_set), content_type=content_type)
    response["Content-Disposition"] = content_disposition_header(True, filename(question_set, extension))
    return response
