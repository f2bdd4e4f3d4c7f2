"""Item statistics of a set once students have answered it: how hard each question is, how well it tells the
students who know the text from those who do not, and how often each option is chosen.

Classical item analysis over each student's first attempt (later attempts have seen the answers):
difficulty p (mean credit, 0..1), discrimination as the corrected point-biserial correlation of the question's
credit with the rest of the score (the score without this question) and as the upper-lower index (p of the top
27 % minus p of the bottom 27 % by total score), and each option's share of choices. Questions that almost everyone
gets right or wrong, or that do not discriminate, are flagged, once enough students answered.
"""

import csv
import io
import math
from collections import Counter

from django.utils.translation import gettext as _

from courses.models import Membership
from tutor.questions import items
from tutor.questions.models import Question

MIN_STUDENTS = 5
EASY, HARD = 0.9, 0.2
LOW_DISCRIMINATION = 0.2
GROUP = 0.27


def first_attempts(question_set):
    """Each student's first attempt at the set, in order of submission (the course's teachers trying it are left
    out)."""
    teachers = set(Membership.objects.teaching().filter(course_id=question_set.course_id)
                   .values_list("user_id", flat=True))
    seen, firsts = set(), []
    for attempt in question_set.attempts.exclude(user_id__in=teachers).order_by("submitted_at", "id"):
        if attempt.user_id not in seen:
            seen.add(attempt.user_id)
            firsts.append(attempt)
    return firsts


def _credits(question, attempt):
    key = str(question.pk)
    if key not in attempt.answers:
        return None, None
    response = attempt.answers[key]
    credit = attempt.credits.get(key) if key in attempt.credits else items.credit(question, response)
    return response, credit


def _correlation(xs, ys):
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sx = math.sqrt(sum((x - mx) ** 2 for x in xs))
    sy = math.sqrt(sum((y - my) ** 2 for y in ys))
    if not sx or not sy:
        return None
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / (sx * sy)


def item_statistics(question_set):
    """{"students": n, "items": [per question: question, n, difficulty, point_biserial, upper_lower, options
    (label, share), answers (frequent short answers), flags (codes)]} for the set's released questions."""
    attempts = first_attempts(question_set)
    questions = list(question_set.questions.approved().order_by("position"))
    table = {a.pk: {q.pk: _credits(q, a) for q in questions} for a in attempts}
    totals = {a.pk: sum(c for _r, c in table[a.pk].values() if c is not None) for a in attempts}
    ranked = sorted(attempts, key=lambda a: totals[a.pk])
    group = max(1, round(GROUP * len(ranked))) if ranked else 0
    lower, upper = {a.pk for a in ranked[:group]}, {a.pk for a in ranked[-group:]}
    out = []
    for question in questions:
        rows = [(a, *table[a.pk][question.pk]) for a in attempts if table[a.pk][question.pk][1] is not None
                or (question.kind == Question.OPEN and table[a.pk][question.pk][0] is not None)]
        entry = {"question": question, "n": len(rows), "difficulty": None, "point_biserial": None,
                 "upper_lower": None, "options": [], "answers": [], "flags": []}
        scored = [(a, r, c) for a, r, c in rows if c is not None]
        if scored:
            entry["difficulty"] = round(sum(c for _a, _r, c in scored) / len(scored), 3)
            if len(scored) >= 2:
                point = _correlation([c for _a, _r, c in scored], [totals[a.pk] - c for a, _r, c in scored])
                entry["point_biserial"] = round(point, 3) if point is not None else None
            up = [c for a, _r, c in scored if a.pk in upper]
            low = [c for a, _r, c in scored if a.pk in lower]
            if up and low and len(scored) >= 2:
                entry["upper_lower"] = round(sum(up) / len(up) - sum(low) / len(low), 3)
        entry["options"] = _shares(question, [r for _a, r, _c in rows])
        if question.kind in (Question.SHORT, Question.OPEN):
            entry["answers"] = Counter(" ".join(str(r).split()) for _a, r, _c in rows if r).most_common(5)
        entry["flags"] = flags(entry)
        out.append(entry)
    return {"students": len(attempts), "items": out}


def _shares(question, responses):
    """(label, share of the students who chose it, is it correct) for each option; 'no answer' last."""
    n = len(responses)
    if not n or question.kind not in (*Question.CHOICE_KINDS, Question.TRUE_FALSE):
        return []
    if question.kind == Question.TRUE_FALSE:
        labels = [(True, _("true"), question.truth is True), (False, _("false"), question.truth is False)]
        shares = [(label, round(sum(r is value for r in responses) / n, 3), right) for value, label, right in labels]
    else:
        chosen = [set(r) if isinstance(r, list) else {r} for r in responses]
        shares = [(option, round(sum(i in c for c in chosen) / n, 3), i in question.correct_set)
                  for i, option in enumerate(question.options)]
    unanswered = sum(r in (None, []) for r in responses)
    return shares + [(_("no answer"), round(unanswered / n, 3), False)] if unanswered else shares


def flags(entry):
    """The statistics' warnings for one question: easy, hard, flat (does not discriminate), few (too few students)."""
    if entry["difficulty"] is None:
        return []
    if entry["n"] < MIN_STUDENTS:
        return ["few"]
    found = []
    if entry["difficulty"] >= EASY:
        found.append("easy")
    elif entry["difficulty"] <= HARD:
        found.append("hard")
    if entry["point_biserial"] is None or entry["point_biserial"] < LOW_DISCRIMINATION:
        found.append("flat")
    return found


def flag_text(code):
    """A flag's warning in the reader's language."""
    return {"easy": _("Almost everyone answers it right."),
            "hard": _("Almost everyone answers it wrong: check the key and the wording."),
            "flat": _("It does not tell those who know the text from those who do not."),
            "few": _("Too few students have answered it to judge.")}[code]


def as_csv(statistics):
    """The statistics as CSV text (one row per question)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["position", "kind", "question", "students", "difficulty", "point_biserial", "upper_lower_27",
                     "flags", "option_shares", "frequent_answers"])
    for entry in statistics["items"]:
        question = entry["question"]
        writer.writerow([question.position, question.kind, question.stem, entry["n"],
                         "" if entry["difficulty"] is None else entry["difficulty"],
                         "" if entry["point_biserial"] is None else entry["point_biserial"],
                         "" if entry["upper_lower"] is None else entry["upper_lower"], " ".join(entry["flags"]),
                         "; ".join(f"{'*' if right else ''}{label}: {share}" for label, share, right in entry["options"]),
                         "; ".join(f"{text}: {count}" for text, count in entry["answers"])])
    return out.getvalue()
