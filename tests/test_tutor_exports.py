"""Exports read back the way Moodle reads them: GIFT by a port of qformat_gift's parsing rules, Moodle XML by
the fields qformat_xml reads. Text with HTML's and GIFT's special characters arrives as the lecturer wrote it."""

import html
import re
import xml.etree.ElementTree as ET

import pytest

from courses.models import Course
from tutor.exports import gift, moodle_xml
from tutor.models import Question, QuestionSet

TRICKY = {
    "stem": "Was bedeutet Starvation <niedrig> bei #include <stdio.h> & Co.?",
    "options": ["a = b: {c} ~ d \\ e", "Prozess mit <hoher> Priorität", "100 % CPU # kein Kommentar", "nichts"],
    "explanation": "Niedrig priorisierte Prozesse (<niedrig>) kommen nie dran: {Starvation}.",
}


@pytest.fixture
def released(db):
    course = Course.objects.create(title="Betriebssysteme")
    question_set = QuestionSet.objects.create(course=course, title="Scheduling: Kapitel {2}",
                                              status=QuestionSet.RELEASED)
    Question.objects.create(question_set=question_set, position=1, stem=TRICKY["stem"], options=TRICKY["options"],
                            correct_index=1, explanation=TRICKY["explanation"], review=Question.APPROVED)
    return question_set


# --- qformat_gift's reading, ported from question/format/gift/format.php (Moodle 5.0) ----------------------
ESCAPED = ["\\:", "\\#", "\\=", "\\{", "\\}", "\\~", "\\n"]
PLACEHOLDERS = ["&&058;", "&&035;", "&&061;", "&&123;", "&&125;", "&&126;", "&&010"]
CHARACTERS = [":", "#", "=", "{", "}", "~", "\n"]


def escapedchar_pre(text):
    text = text.replace("\\\\", "&&092;")
    for escaped, placeholder in zip(ESCAPED, PLACEHOLDERS, strict=True):
        text = text.replace(escaped, placeholder)
    return text.replace("&&092;", "\\")


def escapedchar_post(text):
    for placeholder, character in zip(PLACEHOLDERS, CHARACTERS, strict=True):
        text = text.replace(placeholder, character)
    return text


def parse_text_with_format(text, default="moodle"):
    fmt = default
    if text.startswith("["):
        end = text.index("]")
        if text[1:end] in ("html", "moodle", "plain", "markdown"):
            fmt, text = text[1:end], text[end + 1:]
    return escapedchar_post(text).strip(), fmt


def read_gift_question(block):
    """(name, (text, format), general feedback, [(answer, fraction)]) as qformat_gift::readquestion finds them."""
    text = escapedchar_pre(block.strip())
    assert text.startswith("::")
    text = text[2:]
    name, text = escapedchar_post(text[:text.index("::")]), text[text.index("::") + 2:].strip()
    start, finish = text.index("{"), text.index("}")
    answers = text[start + 1:finish].strip()
    question_text = text[:start] + text[finish + 1:]
    feedback = ""
    if "####" in answers:
        answers, feedback = answers[:answers.rindex("####")].strip(), answers[answers.rindex("####") + 4:]
    stem = parse_text_with_format(question_text)
    feedback = parse_text_with_format(feedback, stem[1])
    parsed = []
    for answer in [a for a in answers.replace("=", "~=").split("~") if a.strip()]:
        answer = answer.strip()
        fraction = 1 if answer.startswith("=") else 0
        answer = answer[1:] if fraction else answer
        parsed.append((parse_text_with_format(answer.split("#", 1)[0].strip(), stem[1]), fraction))
    return name, stem, feedback, parsed


def shown(text, fmt):
    """What a person sees of a text in this format (HTML is displayed, so its entities are decoded)."""
    assert fmt == "html", "Moodle would read this text as auto-format: '<' would start a tag"
    return html.unescape(re.sub(r"</?p>", "", text))


def test_gift_arrives_in_moodle_as_written(released):
    blocks = [b for b in gift(released).split("\n\n") if b.strip()]
    assert blocks[0] == "$CATEGORY: $course$/top/Scheduling\\: Kapitel \\{2\\}"
    name, stem, feedback, answers = read_gift_question(blocks[1])
    assert name.startswith("01 Was bedeutet Starvation") and "<niedrig>" in html.unescape(name)
    assert shown(*stem) == TRICKY["stem"]
    assert shown(*feedback) == TRICKY["explanation"]
    assert [shown(*text) for text, _ in answers] == TRICKY["options"]
    assert [fraction for _, fraction in answers] == [0, 1, 0, 0]


def test_moodle_xml_arrives_as_written(released):
    quiz = ET.fromstring(moodle_xml(released))
    question = quiz.find("question[@type='multichoice']")
    assert question.find("questiontext").get("format") == "html"
    assert shown(question.findtext("questiontext/text"), "html") == TRICKY["stem"]
    assert shown(question.findtext("generalfeedback/text"), "html") == TRICKY["explanation"]
    answers = question.findall("answer")
    assert [shown(a.findtext("text"), a.get("format")) for a in answers] == TRICKY["options"]
    assert [a.get("fraction") for a in answers] == ["0", "100", "0", "0"]
    assert question.findtext("name/text").startswith("01 Was bedeutet Starvation <niedrig>")
