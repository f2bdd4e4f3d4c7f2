"""Hybrid retrieval: ranked passages with their places in the source, and never another course's text."""

import random
import re
from pathlib import Path

import numpy as np
import pytest

from courses.documents import add_document
from courses.embeddings import get_embedder
from courses.ingest import active_index, ingest_document
from courses.models import Chunk, Course
from courses.retrieval import Passage, course_documents, keyword_text, retrieve, search

CORPUS = Path(__file__).resolve().parent.parent / "deploy" / "demo_corpus" / "debian-reference-de"


@pytest.fixture
def two_courses(db, settings, tmp_path):
    """Course A holds chapter 1 of the Debian-Referenz, course B chapter 3 (static embeddings: fast)."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.EMBEDDING_MODEL = "static"
    courses = []
    for title, name in [("A", "ch01.de.html"), ("B", "ch03.de.html")]:
        course = Course.objects.create(title=title)
        document = add_document(course, name, (CORPUS / name).read_bytes(), enqueue=False)
        assert ingest_document(document.pk) == "ready"
        courses.append(course)
    return courses


def test_retrieve_returns_ranked_passages_with_their_place_in_the_source(two_courses):
    _, course_b = two_courses
    passages = retrieve(course_b.pk, "Was ist die erste Stufe beim Hochfahren des Rechners?", k=5)
    assert 1 <= len(passages) <= 5 and all(isinstance(p, Passage) for p in passages)
    assert [p.score for p in passages] == sorted((p.score for p in passages), reverse=True)
    assert any("UEFI" in p.text for p in passages[:3])
    top = passages[0]
    assert top.document_title == "ch03.de" and top.section_path.startswith("3 Die Systeminitialisierung")
    assert top.url() == f"/courses/{course_b.pk}/passage/{top.chunk_id}/"
    assert course_documents(course_b.pk) == ["ch03.de"]


def test_german_stemming_and_or_semantics_find_the_passage(two_courses):
    _, course_b = two_courses
    passages = retrieve(course_b.pk, "Welche Befehle zeigen die Systemmeldungen von journald?", k=5)
    assert any("journalctl" in p.text for p in passages)
    assert keyword_text("Wie kann ich das System herunterfahren?") == "das System herunterfahren"


def test_german_compounds_in_the_query_are_split_by_the_course_vocabulary(two_courses):
    """"Kernelmeldungen" is not in chapter 3, "Kernel" and "Meldungen" are: the full-text half finds them."""
    _, course_b = two_courses
    index = active_index(course_b.pk)
    vector = np.random.default_rng(1).normal(size=index.dimension)
    rows = search(course_b.pk, index.pk, vector, "Kernelmeldungen", k=3, semantic_weight=0.0)
    assert rows and rows[0][6] > 0, "without the split no chunk matches the full-text half"
    assert re.search("kernel", rows[0][5], re.I) and re.search("meldung", rows[0][5], re.I)


def test_no_query_and_no_index_give_no_passages(two_courses, db):
    empty = Course.objects.create(title="leer")
    assert retrieve(empty.pk, "UEFI") == []
    assert retrieve(two_courses[0].pk, "   ") == []


def test_ten_thousand_random_queries_never_cross_courses(two_courses):
    """Isolation lives in the SQL: whatever the query, only the asked course's chunks come back."""
    rng = random.Random(7)
    ids = {c.pk: set(Chunk.objects.filter(course=c).values_list("pk", flat=True)) for c in two_courses}
    assert all(ids.values()) and not set.intersection(*ids.values())
    indexes = {c.pk: active_index(c.pk).pk for c in two_courses}
    vocabulary = sorted({w for text in Chunk.objects.values_list("text", flat=True)[:400]
                         for w in re.findall(r"\w{4,}", text)})
    embedder = get_embedder("static")
    queries = [" ".join(rng.sample(vocabulary, rng.randint(1, 6))) for _ in range(100)]
    vectors = list(embedder.embed_passages(queries))
    vectors += list(np.random.default_rng(7).normal(size=(100, embedder.dimension)))
    for i in range(10_000):
        course_id = rng.choice(list(ids))
        rows = search(course_id, indexes[course_id], vectors[i % len(vectors)], queries[i % len(queries)],
                      k=rng.choice([1, 5, 10, 50]))
        assert rows, "every query finds something in its own course"
        assert {row[0] for row in rows} <= ids[course_id]


@pytest.mark.slow
def test_the_default_model_finds_paraphrased_questions(db, settings, tmp_path):
    """With e5-small (the default outside tests) hybrid retrieval answers questions worded unlike the text."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.EMBEDDING_MODEL = "e5-small"
    course = Course.objects.create(title="Kapitel 3")
    document = add_document(course, "ch03.de.html", (CORPUS / "ch03.de.html").read_bytes(), enqueue=False)
    assert ingest_document(document.pk) == "ready"
    assert active_index(course.pk).model == "e5-small"
    passages = retrieve(course.pk, "Welches Programm startet als erster Prozess nach dem Kernel?", k=5)
    assert any("systemd" in p.text for p in passages)
