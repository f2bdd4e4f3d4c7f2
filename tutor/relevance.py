"""Which retrieved passages an answer may use: only those sharing a content word with the question (the model never
gets passages that merely look similar as vectors), and above CHAT_MIN_RELEVANCE when that is set."""

import re

from django.conf import settings

from courses.language import STOPWORDS
from courses.retrieval import retrieve


def content_words(text):
    """The words of a text that carry meaning (no stop words, at least 3 letters), lower-cased."""
    return {w for w in re.findall(r"[^\W_]{3,}", text.lower()) if w not in STOPWORDS}


def shares_content_words(query, passage_text):
    """Whether a passage uses one of the query's content words (or its stem: first five letters, or the
    word inside a compound such as "Prozessnummer")."""
    text = passage_text.lower()
    for word in content_words(query):
        if re.search(r"(?<![^\W_])" + re.escape(word[:5]), text) or (len(word) >= 6 and word in text):
            return True
    return False


def relevant_passages(course_id, query, k):
    """The course's passages for the query that are relevant: they share a content word with the question
    (the model never gets passages that only look similar as vectors) and, when settings.CHAT_MIN_RELEVANCE
    is set, reach that hybrid retrieval score."""
    threshold = settings.CHAT_MIN_RELEVANCE
    return [p for p in retrieve(course_id, query, k=k)
            if shares_content_words(query, p.document_title + " " + p.section_path + " " + p.text)
            and (threshold is None or p.score >= threshold)]
