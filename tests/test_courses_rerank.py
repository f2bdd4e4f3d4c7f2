"""Optional reranking on the inference server: the order follows its scores; a failing reranker changes nothing.

The reranker is a loopback HTTP stand-in (no cross-encoder model ships in a package here) that answers in
the two shapes real servers use (vLLM/llama.cpp "results", TEI list) and scores a passage by how often it
contains a word the test picks: what a cross-encoder does, made deterministic.
"""

import logging

import pytest

from courses.retrieval import retrieve
from tests.stub_rerank import StubReranker

QUERY = "Wie sehe ich die Meldungen des Systems?"


@pytest.fixture
def reranker():
    stub = StubReranker()
    yield stub
    stub.stop()


@pytest.mark.parametrize("shape", ["results", "tei"])
def test_the_reranker_s_scores_decide_the_order(two_courses, reranker, settings, shape):
    course_a, course_b = two_courses
    fused = retrieve(course_b.pk, QUERY, k=20)
    # the reranker favours a word that is in the fused candidates but not in the fused first passage
    favourite = next(word for word in ("journalctl", "dmesg", "syslog", "rsyslog", "logger")
                     if any(word in p.text for p in fused[1:]) and word not in fused[0].text)
    reranker.favourite, reranker.shape = favourite, shape
    settings.RERANK_URL, settings.RERANK_MODEL, settings.RERANK_CANDIDATES = reranker.url, "bge-reranker", 20

    reranked = retrieve(course_b.pk, QUERY, k=5)
    assert favourite in reranked[0].text and reranked[0].chunk_id != fused[0].chunk_id
    assert [p.score for p in reranked] == sorted((p.score for p in reranked), reverse=True)
    sent = reranker.requests[-1]
    assert sent["query"] == QUERY and sent["model"] == "bge-reranker" and len(sent["documents"]) == len(fused)
    # candidates come from the course's own SQL: nothing of course A is ever sent to the reranker
    texts_a = {p.text for p in retrieve(course_a.pk, QUERY, k=50)}
    assert not any(text in texts_a for text in sent["documents"])


def test_a_reranker_that_is_down_or_broken_keeps_the_fused_order(two_courses, reranker, settings, caplog):
    _, course_b = two_courses
    fused = [p.chunk_id for p in retrieve(course_b.pk, QUERY, k=5)]
    reranker.broken = True
    settings.RERANK_URL = reranker.url
    with caplog.at_level(logging.WARNING, logger="courses.rerank"):
        assert [p.chunk_id for p in retrieve(course_b.pk, QUERY, k=5)] == fused
    assert "malformed result" in caplog.text

    reranker.stop()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="courses.rerank"):
        assert [p.chunk_id for p in retrieve(course_b.pk, QUERY, k=5)] == fused
    assert "reranking skipped" in caplog.text
