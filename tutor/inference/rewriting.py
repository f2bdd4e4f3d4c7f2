"""Query rewriting: the model rewords a question for the search (a self-contained question, other wordings, and a
hypothetical answer passage), which courses.retrieval searches beside the question and fuses.

Bounded: one request of at most REWRITE_TOKENS tokens and settings.CHAT_REWRITE_SECONDS, no retries; whatever
goes wrong, the question is searched as asked (a rewrite only ever adds recall, never blocks an answer).
"""

import logging

from django.conf import settings

from tutor.inference.client import CHAT, InferenceError
from tutor.inference.prompts import REWRITE_SCHEMA, rewrite_messages

log = logging.getLogger(__name__)

REWRITE_TOKENS = 200


def rewrite_question(config, question, earlier_questions, language, **options):
    """[self-contained question, other wordings…, hypothetical passage] for the search, or None when the model did
    not give them in time."""
    from tutor.chat.answering import model_client

    options.setdefault("kind", CHAT)
    try:
        client = model_client(config, timeout=settings.CHAT_REWRITE_SECONDS, retries=0)
        data, _cut_off = client.chat_json(rewrite_messages(question, earlier_questions, language), REWRITE_SCHEMA,
                                          temperature=0.0, max_tokens=REWRITE_TOKENS, **options)
    except InferenceError as exc:
        log.info("query rewriting skipped (%s): %s", exc.code, exc.reason)
        return None
    if not isinstance(data, dict):
        return None
    texts = [data.get("question"), *(data.get("wordings") or [])[:3], data.get("passage")]
    texts = [t.strip()[:500] for t in texts if isinstance(t, str) and t.strip()]
    return texts or None
