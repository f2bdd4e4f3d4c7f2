"""Anonymised use of a course's tutor for its lecturers: counts, and words only where many people used them.

No names and no question's text: a word (or a pair of words) is shown only when at least
settings.USAGE_MIN_STUDENTS different people used it, so no student is recognisable by their wording.
Students' comments on answers are shown as written, without names (the comment field says so).
"""

import re
from collections import Counter, defaultdict
from datetime import timedelta
from itertools import combinations

from django.conf import settings
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import TruncDate
from django.utils import timezone

from courses.language import STOPWORDS
from tutor.chat.models import Feedback, Message


def questions_per_day(course_id, days=30):
    """[(date, count)] of questions asked in the course over the last days."""
    since = timezone.now() - timedelta(days=days)
    rows = (Message.objects.filter(conversation__course_id=course_id, role=Message.USER, created_at__gte=since)
            .annotate(day=TruncDate("created_at")).values("day").annotate(n=Count("id")).order_by("day"))
    return [(r["day"], r["n"]) for r in rows]


def _words(text):
    """The content words of a question, each under its stem (first six letters) with the form used."""
    return {w[:6]: w for w in re.findall(r"[^\W\d_]{3,}", text.lower()) if w not in STOPWORDS}


def _topics(rows, limit):
    """[(words, students)] of the words (and pairs of words) that at least settings.USAGE_MIN_STUDENTS different
    people used, from (user id, question text) rows; most people first. Nothing that fewer people wrote is shown,
    so no single student is recognisable by their wording."""
    minimum = settings.USAGE_MIN_STUDENTS
    people, forms = defaultdict(set), defaultdict(Counter)
    for user_id, text in rows:
        words = _words(text)
        for stem, form in words.items():
            people[(stem,)].add(user_id)
            forms[stem][form] += 1
        for pair in combinations(sorted(words), 2):
            people[pair].add(user_id)
    shown = [(key, len(users)) for key, users in people.items() if len(users) >= minimum]
    singles = {key[0]: n for key, n in shown if len(key) == 1}
    # a pair is worth showing when it says more than its words do alone: it holds most of their students
    pairs = [(key, n) for key, n in shown if len(key) == 2 and n >= 0.5 * min(singles[key[0]], singles[key[1]])]
    chosen = sorted(pairs + [(key, n) for key, n in shown if len(key) == 1], key=lambda item: (-item[1], item[0]))
    return [(" + ".join(forms[stem].most_common(1)[0][0] for stem in key), n) for key, n in chosen[:limit]]


def frequent_topics(course_id, limit=15):
    """[(words, students)] that at least USAGE_MIN_STUDENTS people used in their questions (stop words left out)."""
    rows = Message.objects.filter(conversation__course_id=course_id, role=Message.USER).values_list(
        "conversation__user_id", "text")
    return _topics(rows.iterator(), limit)


def declined_topics(course_id, limit=20):
    """[(words, students)] of the questions the course texts could not answer (the gaps), only words that at least
    USAGE_MIN_STUDENTS people used in such questions; never a question's text."""
    question = (Message.objects.filter(conversation_id=OuterRef("conversation_id"), role=Message.USER,
                                       created_at__lte=OuterRef("created_at")).order_by("-created_at", "-id"))
    rows = (Message.objects.filter(conversation__course_id=course_id, role=Message.ASSISTANT, declined=True)
            .annotate(question=Subquery(question.values("text")[:1]))
            .values_list("conversation__user_id", "question"))
    return _topics(((user, text or "") for user, text in rows.iterator()), limit)


def usage_report(course_id):
    """Everything the usage page shows."""
    feedback = Feedback.objects.filter(message__conversation__course_id=course_id)
    return {
        "per_day": questions_per_day(course_id),
        "topics": frequent_topics(course_id),
        "declined": declined_topics(course_id),
        "declined_count": Message.objects.filter(conversation__course_id=course_id, role=Message.ASSISTANT,
                                                 declined=True).count(),
        "min_students": settings.USAGE_MIN_STUDENTS,
        "questions": Message.objects.filter(conversation__course_id=course_id, role=Message.USER).count(),
        "helpful": feedback.filter(rating=Feedback.UP).count(),
        "unhelpful": feedback.filter(rating=Feedback.DOWN).count(),
        "comments": list(feedback.exclude(comment="").order_by("-created_at").values_list("comment", flat=True)[:20]),
    }
