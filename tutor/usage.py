"""Anonymised use of a course's tutor for its lecturers: no names, only counts and question texts."""

import re
from collections import Counter
from datetime import timedelta

from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import TruncDate
from django.utils import timezone

from courses.language import STOPWORDS
from tutor.models import Feedback, Message


def questions_per_day(course_id, days=30):
    """[(date, count)] of questions asked in the course over the last days."""
    since = timezone.now() - timedelta(days=days)
    rows = (Message.objects.filter(conversation__course_id=course_id, role=Message.USER, created_at__gte=since)
            .annotate(day=TruncDate("created_at")).values("day").annotate(n=Count("id")).order_by("day"))
    return [(r["day"], r["n"]) for r in rows]


def frequent_topics(course_id, limit=15):
    """[(word, count)] of the words questions use most (stop words left out)."""
    counter = Counter()
    for text in Message.objects.filter(conversation__course_id=course_id, role=Message.USER).values_list(
            "text", flat=True).iterator():
        words = {w for w in re.findall(r"[^\W\d_]{3,}", text.lower()) if w not in STOPWORDS}
        counter.update(words)
    return counter.most_common(limit)


def declined_questions(course_id, limit=50):
    """The latest questions the course texts could not answer (gaps), newest first, without who asked."""
    question = (Message.objects.filter(conversation_id=OuterRef("conversation_id"), role=Message.USER,
                                       created_at__lte=OuterRef("created_at")).order_by("-created_at", "-id"))
    rows = (Message.objects.filter(conversation__course_id=course_id, role=Message.ASSISTANT, declined=True)
            .annotate(question=Subquery(question.values("text")[:1])).order_by("-created_at")
            .values_list("created_at", "question")[:limit])
    return list(rows)


def usage_report(course_id):
    """Everything the usage page shows."""
    feedback = Feedback.objects.filter(message__conversation__course_id=course_id)
    return {
        "per_day": questions_per_day(course_id),
        "topics": frequent_topics(course_id),
        "declined": declined_questions(course_id),
        "questions": Message.objects.filter(conversation__course_id=course_id, role=Message.USER).count(),
        "helpful": feedback.filter(rating=Feedback.UP).count(),
        "unhelpful": feedback.filter(rating=Feedback.DOWN).count(),
        "comments": list(feedback.exclude(comment="").order_by("-created_at").values_list("comment", flat=True)[:20]),
    }
