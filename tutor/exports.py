"""Exports of a released question set for the LMS's own question bank: Moodle XML and GIFT (multiple choice)."""

import re
import xml.etree.ElementTree as ET

from django.http import HttpResponse
from django.utils.html import escape
from django.utils.http import content_disposition_header

from tutor.questions import released_questions


def _text(parent, tag, value, **attributes):
    node = ET.SubElement(parent, tag, attributes)
    ET.SubElement(node, "text").text = value
    return node


def moodle_xml(question_set):
    """The approved questions of a released set as a Moodle XML quiz file (bytes, UTF-8)."""
    quiz = ET.Element("quiz")
    category = ET.SubElement(quiz, "question", type="category")
    _text(category, "category", f"$course$/top/{question_set.title}")
    for number, question in enumerate(released_questions(question_set), start=1):
        node = ET.SubElement(quiz, "question", type="multichoice")
        _text(node, "name", question_name(number, question))
        _text(node, "questiontext", f"<p>{escape(question.stem)}</p>", format="html")
        _text(node, "generalfeedback", f"<p>{escape(question.explanation)}</p>" if question.explanation else "",
              format="html")
        for tag, value in (("defaultgrade", "1"), ("penalty", "0.3333333"), ("hidden", "0"), ("single", "true"),
                           ("shuffleanswers", "true"), ("answernumbering", "abc")):
            ET.SubElement(node, tag).text = value
        for index, option in enumerate(question.options):
            answer = _text(node, "answer", escape(option), fraction="100" if index == question.correct_index else "0",
                           format="html")
            _text(answer, "feedback", "", format="html")
    ET.indent(quiz)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(quiz, encoding="utf-8") + b"\n"


_GIFT_SPECIAL = re.compile(r"([~=#{}:\\])")


def _gift(text):
    """Text for a GIFT file whose question is in HTML format: HTML-escaped (Moodle reads GIFT text as HTML, so
    "<niedrig>" or "#include <stdio.h>" would vanish otherwise), then GIFT's own characters escaped."""
    return _GIFT_SPECIAL.sub(r"\\\1", escape(" ".join(text.split())))


def question_name(number, question):
    """A question's name in the LMS's question bank: its number in the set and the start of its text."""
    stem = " ".join(question.stem.split())
    return f"{number:02d} {stem[:60]}{'…' if len(stem) > 60 else ''}"


def gift(question_set):
    """The approved questions of a released set in Moodle's GIFT format (text). Every question says [html], so
    Moodle's reader takes its text, answers and feedback as HTML, which they are."""
    blocks = [f"$CATEGORY: $course$/top/{_gift(question_set.title)}"]
    for number, question in enumerate(released_questions(question_set), start=1):
        options = "\n".join(("=" if i == question.correct_index else "~") + _gift(option)
                            for i, option in enumerate(question.options))
        feedback = f"\n####{_gift(question.explanation)}" if question.explanation else ""
        blocks.append(f"::{_gift(question_name(number, question))}::[html]{_gift(question.stem)} "
                      f"{{\n{options}{feedback}\n}}")
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
