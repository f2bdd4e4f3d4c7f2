"""The passages an answer may use: the course's best passages for the question (and its rewordings), and,
when CHAT_MIN_RELEVANCE is set, only those reaching that hybrid retrieval score. Whether they hold the answer at
all is tutor.chat.answerability's judgement (raw similarity and word coverage, not ranks)."""

from django.conf import settings

from courses.retrieval import retrieve


def relevant_passages(course_id, query, k, *, also=()):
    """The course's k best passages for the query (also: other wordings, fused), each with its evidence; when
    settings.CHAT_MIN_RELEVANCE is set, only those reaching that hybrid retrieval score."""
    threshold = settings.CHAT_MIN_RELEVANCE
    return [p for p in retrieve(course_id, query, k=k, also=also) if threshold is None or p.score >= threshold]
