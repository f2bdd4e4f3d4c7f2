"""Exports read back the way Moodle reads them, for every kind of question: GIFT by a port of qformat_gift's parsing
rules (question/format/gift/format.php), Moodle XML by a port of the fields and rules of qformat_xml's import
(question/format/xml/format.php) and the values Moodle's question types accept. Text with HTML's and GIFT's special
characters arrives as the lecturer wrote it; a Moodle XML export imported again (tutor.questions.imports) is the same
set."""

import html
import re
import xml.etree.ElementTree as ET

import pytest

from courses.models import Course
from tutor.questions import item_checks
from tutor.questions.exports import gift, moodle_xml
from tutor.questions.imports import QuestionImportError, import_moodle_xml, parse
from tutor.questions.models import Question, QuestionChange, QuestionSet

TRICKY = {
    "stem": "Was bedeutet Starvation <niedrig> bei #include <stdio.h> & Co.?",
    "options": ["a = b: {c} ~ d \\ e", "Prozess mit <hoher> Priorität", "100 % CPU # kein Kommentar", "nichts"],
    "explanation": "Niedrig priorisierte Prozesse (<niedrig>) kommen nie dran: {Starvation}.",
}
# one question of every kind, each with characters that HTML or GIFT would eat
KINDS = [
    dict(kind=Question.SINGLE, stem=TRICKY["stem"], options=TRICKY["options"], correct_index=1,
         explanation=TRICKY["explanation"]),
    dict(kind=Question.MULTIPLE, stem="Welche Aussagen über <init> stimmen?",
         options=["Er hat die PID 1", "Der Kernel startet ihn", "Er ist ein Editor: {vi}", "Er heißt apt"],
         correct_indices=[0, 1], explanation="Siehe Abschnitt 3.2 #init."),
    dict(kind=Question.TRUE_FALSE, stem="Der Init-Prozess hat die PID 1 & startet systemd.", truth=True,
         explanation="So steht es im Text."),
    dict(kind=Question.TRUE_FALSE, stem="APT ist ein Init-System.", truth=False, explanation=""),
    dict(kind=Question.SHORT, stem="Wie heißt das voreingestellte Init-System?",
         accepted_answers=["systemd", "<systemd>", "sys*d"], case_sensitive=True, explanation="Es ist systemd."),
    dict(kind=Question.SHORT, stem="Welcher Befehl installiert Pakete?", accepted_answers=["apt install"],
         case_sensitive=False, explanation=""),
    dict(kind=Question.OPEN, stem="Erklären Sie, was der Init-Prozess <PID 1> tut.",
         model_answer="Er wird als erster Prozess gestartet & startet die Dienste.",
         rubric="nennt PID 1\nnennt die Dienste {systemd}", explanation=""),
]
COMPARED = ["kind", "stem", "options", "correct_index", "correct_indices", "truth", "accepted_answers",
            "case_sensitive", "model_answer", "rubric", "explanation"]


@pytest.fixture
def released(db):
    course = Course.objects.create(title="Betriebssysteme")
    question_set = QuestionSet.objects.create(course=course, title="Scheduling: Kapitel {2}",
                                              status=QuestionSet.RELEASED)
    for position, fields in enumerate(KINDS, start=1):
        Question.objects.create(question_set=question_set, position=position, review=Question.APPROVED, **fields)
    return question_set


def fields_of(question):
    values = {name: getattr(question, name) for name in COMPARED}
    if question.kind != Question.SINGLE:
        values["correct_index"] = 0
    return values


# --- qformat_gift's reading, ported from question/format/gift/format.php (Moodle 5.0) ----------------------
ESCAPED = ["\\:", "\\#", "\\=", "\\{", "\\}", "\\~", "\\n"]
PLACEHOLDERS = ["&&058;", "&&035;", "&&061;", "&&123;", "&&125;", "&&126;", "&&010"]
CHARACTERS = [":", "#", "=", "{", "}", "~", "\n"]
WEIGHT = re.compile(r"^%-*([0-9]{1,2})\.?([0-9]*)%")


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


def answer_weight(answer):
    answer = answer[1:]
    end = answer.index("%")
    return float(answer[:end]) / 100, answer[end + 1:]


def read_gift_question(block):
    """What qformat_gift::readquestion makes of one question: {qtype, name, text (text, format), feedback,
    answers [(text, fraction)], correctanswer (true/false)}."""
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
    out = {"name": name, "text": stem, "feedback": parse_text_with_format(feedback, stem[1]), "answers": []}
    if answers == "":
        out["qtype"] = "essay"
    elif "~" in answers:
        out["qtype"] = "multichoice"
        out["single"] = "=" in answers
        for answer in [a for a in answers.replace("=", "~=").split("~") if a.strip()]:
            answer = answer.strip()
            if answer.startswith("="):
                fraction, answer = 1.0, answer[1:]
            elif WEIGHT.match(answer):
                fraction, answer = answer_weight(answer)
            else:
                fraction = 0.0
            out["answers"].append((parse_text_with_format(answer.split("#", 1)[0].strip(), stem[1]), fraction))
    elif "=" in answers and "->" in answers:
        out["qtype"] = "match"
    else:
        check = answers.split("#", 1)[0].strip() if answers.find("#") > 0 else answers
        if check in ("T", "TRUE", "F", "FALSE"):
            out["qtype"], out["correctanswer"] = "truefalse", check in ("T", "TRUE")
        else:
            out["qtype"] = "shortanswer"
            for answer in [a for a in answers.split("=") if a.strip()]:
                answer = answer.strip()
                fraction = 1.0
                if WEIGHT.match(answer):
                    fraction, answer = answer_weight(answer)
                text_, _fmt = parse_text_with_format(answer.split("#", 1)[0].strip(), stem[1])
                out["answers"].append((text_, fraction))  # a short answer's text is compared as it is
    return out


def shown(text, fmt):
    """What a person sees of a text in this format (HTML is displayed, so its entities are decoded)."""
    assert fmt == "html", "Moodle would read this text as auto-format: '<' would start a tag"
    return html.unescape(re.sub(r"</?p>", "", text))


def gift_blocks(question_set):
    return [b for b in gift(question_set).split("\n\n") if b.strip()]


def test_gift_arrives_in_moodle_as_written(released):
    blocks = gift_blocks(released)
    assert blocks[0] == "$CATEGORY: $course$/top/Scheduling\\: Kapitel \\{2\\}"
    read = read_gift_question(blocks[1])
    assert read["qtype"] == "multichoice" and read["single"]
    assert read["name"].startswith("01 Was bedeutet Starvation") and "<niedrig>" in html.unescape(read["name"])
    assert shown(*read["text"]) == TRICKY["stem"]
    assert shown(*read["feedback"]) == TRICKY["explanation"]
    assert [shown(*text) for text, _ in read["answers"]] == TRICKY["options"]
    assert [fraction for _, fraction in read["answers"]] == [0, 1, 0, 0]


def test_gift_of_every_kind_is_read_by_moodle_as_that_kind(released):
    multiple, true, false, short, short_plain, essay = (read_gift_question(b) for b in gift_blocks(released)[2:])
    assert multiple["qtype"] == "multichoice" and not multiple["single"]
    assert [shown(*t) for t, _f in multiple["answers"]] == KINDS[1]["options"]
    assert [f for _t, f in multiple["answers"]] == [0.5, 0.5, -0.5, -0.5]
    assert (true["qtype"], true["correctanswer"], shown(*true["text"])) == ("truefalse", True, KINDS[2]["stem"])
    assert shown(*true["feedback"]) == "So steht es im Text."
    assert (false["qtype"], false["correctanswer"]) == ("truefalse", False)
    assert short["qtype"] == "shortanswer"
    assert short["answers"] == [("systemd", 1.0), ("<systemd>", 1.0), ("sys*d", 1.0)]  # plain, never HTML-escaped
    assert short_plain["answers"] == [("apt install", 1.0)]
    assert essay["qtype"] == "essay" and shown(*essay["text"]) == KINDS[6]["stem"]
    assert shown(*essay["feedback"]) == KINDS[6]["model_answer"]  # GIFT has no grader information


# --- qformat_xml's reading, ported from question/format/xml/format.php (Moodle 5.0) ------------------------------
# question_bank::fraction_options_full(): the grades Moodle accepts for an answer
FRACTIONS = {round(f, 5) for f in [1, .9, .8333333, .8, .75, .7, .6666667, .6, .5, .4, .3333333, .3, .25, .2,
                                   .1666667, .1428571, .125, .1111111, .1, .05, 0]}
FRACTIONS |= {-f for f in FRACTIONS}
FORMATS = {"moodle_auto_format", "html", "plain_text", "wiki_like", "markdown"}


def getpath(node, path, default=None, required=False):
    found = node.find(path)
    if found is None:
        assert not required, f"Moodle refuses a question without {path}"
        return default
    return (found.text or "").strip()


def text_field(node, tag):
    found = node.find(tag)
    assert found is not None, f"missing <{tag}>"
    fmt = found.get("format", "html")
    assert fmt in FORMATS, f"<{tag} format={fmt!r}>: Moodle assumes html and warns"
    return getpath(found, "text", ""), fmt


def import_answer(answer, with_files):
    fraction = float(answer.get("fraction", 0)) / 100
    assert round(fraction, 5) in FRACTIONS, f"Moodle does not accept the grade {fraction}"
    text = text_field(answer, ".") if with_files else (getpath(answer, "text", ""), "plain_text")
    return text, fraction, text_field(answer, "feedback")


def read_xml_question(node):
    """What qformat_xml::import_question makes of one <question>: the fields of Moodle's question object, checked
    the way its question types check them when they are saved."""
    qtype = node.get("type")
    qo = {"qtype": qtype, "name": getpath(node, "name/text", required=True),
          "questiontext": text_field(node, "questiontext"), "generalfeedback": text_field(node, "generalfeedback"),
          "defaultmark": float(getpath(node, "defaultgrade", "1")), "penalty": float(getpath(node, "penalty", "0.33"))}
    answers = node.findall("answer")
    if qtype == "multichoice":
        qo["single"] = getpath(node, "single", "true") not in ("false", "")
        qo["answers"] = [import_answer(a, True) for a in answers]
        positive = sum(f for _t, f, _fb in qo["answers"] if f > 0)
        if qo["single"]:
            assert max(f for _t, f, _fb in qo["answers"]) == 1, "a single-answer question needs a 100 % answer"
        else:
            assert abs(positive - 1) < 0.0001, "the positive grades of a multiple-answer question must add up to 100 %"
    elif qtype == "truefalse":
        texts = [getpath(a, "text") for a in answers]
        assert texts == ["true", "false"], "Moodle matches the answers by the texts 'true' and 'false'"
        qo["correctanswer"] = float(answers[0].get("fraction")) == 100
    elif qtype == "shortanswer":
        qo["usecase"] = getpath(node, "usecase")
        assert qo["usecase"] in ("0", "1")
        qo["answers"] = [import_answer(a, False) for a in answers]
    elif qtype == "essay":
        qo["responseformat"] = getpath(node, "responseformat", "editor")
        assert qo["responseformat"] in ("editor", "editorfilepicker", "plain", "monospaced", "noinline")
        for tag in ("responsefieldlines", "responserequired", "attachments", "attachmentsrequired"):
            qo[tag] = int(getpath(node, tag, "0"))
        qo["graderinfo"] = text_field(node, "graderinfo")
        qo["responsetemplate"] = text_field(node, "responsetemplate")
    else:
        raise AssertionError(f"unexpected question type {qtype!r}")
    return qo


def test_moodle_xml_arrives_as_written(released):
    quiz = ET.fromstring(moodle_xml(released))
    question = read_xml_question(quiz.find("question[@type='multichoice']"))
    assert question["questiontext"][1] == "html" and shown(*question["questiontext"]) == TRICKY["stem"]
    assert shown(*question["generalfeedback"]) == TRICKY["explanation"]
    assert [shown(*text) for text, _f, _fb in question["answers"]] == TRICKY["options"]
    assert [f for _t, f, _fb in question["answers"]] == [0, 1, 0, 0]
    assert question["name"].startswith("01 Was bedeutet Starvation <niedrig>")


def test_moodle_xml_of_every_kind_is_what_qformat_xml_reads(released):
    quiz = ET.fromstring(moodle_xml(released))
    assert quiz.find("question[@type='category']/category/text").text == "$course$/top/Scheduling: Kapitel {2}"
    single, multiple, true, false, short, short_plain, essay = (read_xml_question(q) for q in
                                                                 quiz.findall("question")[1:])
    assert not multiple["single"] and [f for _t, f, _fb in multiple["answers"]] == [0.5, 0.5, -0.5, -0.5]
    assert [shown(*t) for t, _f, _fb in multiple["answers"]] == KINDS[1]["options"]
    assert (true["correctanswer"], false["correctanswer"]) == (True, False) and true["penalty"] == 1
    assert short["usecase"] == "1" and short_plain["usecase"] == "0"
    assert [t[0] for t, _f, _fb in short["answers"]] == ["systemd", "<systemd>", "sys*d"]  # plain text
    assert [f for _t, f, _fb in short["answers"]] == [1, 1, 1]
    assert essay["responseformat"] == "editor" and essay["responserequired"] == 1
    info = shown(*essay["graderinfo"])
    assert KINDS[6]["model_answer"] in info and "nennt die Dienste {systemd}" in info


# --- the round trip: a Moodle XML export imported again --------------------------------------------------------

def test_every_kind_survives_a_moodle_xml_round_trip(released):
    originals = list(released.questions.order_by("position"))
    item_checks.embed(originals, released.course_id)  # as generated questions are
    Question.objects.bulk_update(originals, ["embedding", "embedding_model"])
    draft = QuestionSet.objects.create(course=released.course, title="Import")
    result = import_moodle_xml(draft, moodle_xml(released))
    assert result["imported"] == len(KINDS) and result["unusable"] == [] and result["skipped"] == {}
    imported = list(draft.questions.order_by("position"))
    assert [fields_of(q) for q in imported] == [fields_of(q) for q in released.questions.order_by("position")]
    assert all(q.origin == Question.IMPORTED and q.review == Question.DRAFT for q in imported)
    assert QuestionChange.objects.filter(question__in=imported, action="imported").count() == len(KINDS)
    # they are already in the course: the near-duplicate check says so on each
    assert all(any(c["check"] == "duplicate" and c["ok"] is False for c in q.checks) for q in imported)


LECTURER_FILE = b"""<?xml version="1.0" encoding="UTF-8"?>
<quiz>
  <question type="category"><category><text>$course$/top/Alt</text></category></question>
  <question type="multichoice">
    <name><text>Frage 1</text></name>
    <questiontext format="html"><text><![CDATA[<p>Was ist <b>systemd</b>&nbsp;genau?</p>]]></text></questiontext>
    <answer fraction="100" format="html"><text>Ein Init-System</text></answer>
    <answer fraction="0" format="html"><text>Ein Editor</text></answer>
  </question>
  <question type="truefalse">
    <name><text>alt</text></name>
    <questiontext format="moodle_auto_format"><text>Debian nutzt systemd als Init-System.</text></questiontext>
    <answer fraction="0"><text>Wahr</text></answer>
    <answer fraction="100"><text>Falsch</text></answer>
  </question>
  <question type="essay">
    <name><text>Essay</text></name>
    <questiontext format="html"><text>Beschreiben Sie den Systemstart unter Debian.</text></questiontext>
    <graderinfo format="html"><text>Mindestens drei Schritte nennen.</text></graderinfo>
  </question>
  <question type="numerical"><name><text>Zahl</text></name><questiontext><text>1+1?</text></questiontext></question>
  <question type="multichoice">
    <name><text>kaputt</text></name>
    <questiontext format="html"><text>Diese Frage hat keine richtige Antwort?</text></questiontext>
    <answer fraction="0"><text>a</text></answer><answer fraction="0"><text>b</text></answer>
  </question>
</quiz>"""  # a file of the lecturer's own (other types, an old true/false, a broken question)


def test_a_lecturer_s_own_moodle_file_is_imported_and_what_cannot_be_is_counted(db):
    course = Course.objects.create(title="Kurs")
    target = QuestionSet.objects.create(course=course, title="Meine Fragen")
    result = import_moodle_xml(target, LECTURER_FILE)
    assert result["imported"] == 3 and result["skipped"] == {"numerical": 1} and len(result["unusable"]) == 1
    choice, truth, essay = target.questions.order_by("position")
    assert (choice.stem, choice.options, choice.correct_index) == ("Was ist systemd genau?",
                                                                  ["Ein Init-System", "Ein Editor"], 0)
    assert truth.kind == Question.TRUE_FALSE and truth.truth is False  # old files: true first, then false
    assert essay.kind == Question.OPEN and essay.rubric == "Mindestens drei Schritte nennen."


@pytest.mark.parametrize("data", [
    b"not xml at all",
    b"<html><body>no quiz</body></html>",
    b'<?xml version="1.0"?><!DOCTYPE quiz [<!ENTITY a "aaaa">]><quiz>&a;</quiz>',
])
def test_a_file_that_is_not_moodle_xml_is_refused_with_a_reason(data):
    with pytest.raises(QuestionImportError):
        parse(data)
