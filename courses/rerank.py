"""Optional cross-encoder reranking of retrieved passages on the institution's own inference server.

No cross-encoder ships in a Python package here, so reranking is a call to a rerank endpoint that vLLM
(``/v1/rerank``, ``/rerank``), llama.cpp's ``llama-server --reranking`` (``/v1/rerank``) and Hugging Face
text-embeddings-inference (``/rerank``) serve. Both answer shapes are read:

- Cohere/Jina style (vLLM, llama.cpp): ``{"results": [{"index": 0, "relevance_score": 0.9}, ...]}``
- TEI style: ``[{"index": 0, "score": 0.9}, ...]``

Off unless ``RERANK_URL`` is set. A rerank server that is down or answers nonsense never fails a search:
the fused order is kept and a warning is logged.
"""

import logging
import time

import httpx
from django.conf import settings

log = logging.getLogger(__name__)


class RerankError(Exception):
    """The rerank server did not give a usable answer."""


def enabled():
    """Whether a rerank server is configured."""
    return bool(settings.RERANK_URL)


_client = None


def _http():
    global _client
    if _client is None:
        headers = {"Authorization": f"Bearer {settings.INFERENCE_API_KEY}"} if settings.INFERENCE_API_KEY else {}
        _client = httpx.Client(timeout=settings.RERANK_TIMEOUT, headers=headers)
    return _client


def scores(query, texts):
    """Relevance scores of texts for query, in the order of texts; RerankError when the server fails."""
    if not texts:
        return []
    body = {"query": query, "documents": list(texts), "texts": list(texts), "top_n": len(texts)}
    if settings.RERANK_MODEL:
        body["model"] = settings.RERANK_MODEL
    try:
        response = _http().post(settings.RERANK_URL, json=body)
        response.raise_for_status()
        data = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise RerankError(f"rerank server {settings.RERANK_URL}: {exc}") from exc
    results = data.get("results") if isinstance(data, dict) else data
    if not isinstance(results, list):
        raise RerankError(f"rerank server {settings.RERANK_URL}: no results in the answer")
    found = [None] * len(texts)
    for item in results:
        try:
            index = int(item["index"])
            value = float(item["relevance_score"] if "relevance_score" in item else item["score"])
        except (KeyError, TypeError, ValueError) as exc:
            raise RerankError(f"rerank server {settings.RERANK_URL}: malformed result {item!r}") from exc
        if not 0 <= index < len(texts):
            raise RerankError(f"rerank server {settings.RERANK_URL}: index {index} out of range")
        found[index] = value
    if any(value is None for value in found):
        raise RerankError(f"rerank server {settings.RERANK_URL}: not every passage was scored")
    return found


def rerank(query, passages, k):
    """The k best passages by the rerank server's scores (each passage's score becomes that score);
    on any failure the first k in their fused order, with a warning in the log."""
    if not enabled() or len(passages) <= 1:
        return passages[:k]
    started = time.monotonic()
    try:
        values = scores(query, [p.rerank_text for p in passages])
    except RerankError as exc:
        log.warning("reranking skipped, keeping the fused order: %s", exc)
        return passages[:k]
    order = sorted(range(len(passages)), key=lambda i: -values[i])
    log.debug("reranked %d passages in %.0f ms", len(passages), (time.monotonic() - started) * 1000)
    ranked = []
    for i in order[:k]:
        passages[i].score = values[i]
        ranked.append(passages[i])
    return ranked
