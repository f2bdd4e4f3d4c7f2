"""Hybrid retrieval: ranked passages with their places in the source, and never another course's text."""

import random
import re
from pathlib import Path

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from courses import retrieval
from courses.documents import add_document
from courses.embeddings import get_embedder
from courses.ingest import active_index, ingest_document
from courses.models import Chunk, Course, Document, EmbeddingIndex
from courses.retrieval import Passage, course_documents, retrieve, search

CORPUS = Path(__file__).resolve().parent.parent / "deploy" / "demo_corpus" / "debian-reference-de"


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


def test_a_split_verb_finds_the_passage_that_uses_the_whole_verb(two_courses):
    """"fahre … herunter" is "herunterfahren" in chapter 1; without joining them the full-text half sees only
    "fahr" and "herunt", which the passage does not contain."""
    course_a, _ = two_courses
    index = active_index(course_a.pk)
    vector = np.random.default_rng(1).normal(size=index.dimension)
    rows = search(course_a.pk, index.pk, vector, "Wie fahre ich es herunter?", k=3, semantic_weight=0.0)
    assert rows and rows[0][6] > 0
    assert "herunterfahren" in rows[0][5].lower()


def test_a_verb_of_the_question_counts_where_the_text_splits_it(two_courses):
    """"hinzufügen" asked, "Fügen Sie … hinzu" written: the sentence holds the verb (quotes score by this share)."""
    course_a, _ = two_courses
    question = "Wie kann ich einen Benutzer zur Gruppe hinzufügen?"
    split, without = retrieval.word_coverage(course_a.pk, question, [
        "Fügen Sie den Benutzer mit adduser zur Gruppe hinzu.", "Fügen Sie den Benutzer mit adduser zur Gruppe."])
    assert split > without > 0


def test_a_path_of_the_question_counts_whole_and_as_written(two_courses):
    """"/bin/sh" is one word of the question, held by a sentence that names the path (in typographic quotes too),
    not by one that names another path with the same pieces; its pieces "bin" and "sh" weigh nothing alone (blind
    fresh8: the sentence that answers held none of the question's words)."""
    course_a, _ = two_courses
    question = "worauf zeigt /bin/sh bei debian eigentlich?"
    named, other, plain = retrieval.word_coverage(course_a.pk, question, [
        "Die Standard-POSIX-Shell ”/bin/sh” ist ein symbolischer Link auf /usr/bin/dash.",
        "Die Shell /bin/shx liegt unter /usr/bin.", "Debian"])
    assert named > plain > other == 0


def test_german_compounds_in_the_query_are_split_by_the_course_vocabulary(two_courses):
    """"Kernelmeldungen" is not in chapter 3, "Kernel" and "Meldungen" are: the full-text half finds them."""
    _, course_b = two_courses
    index = active_index(course_b.pk)
    vector = np.random.default_rng(1).normal(size=index.dimension)
    rows = search(course_b.pk, index.pk, vector, "Kernelmeldungen", k=3, semantic_weight=0.0)
    assert rows and rows[0][6] > 0, "without the split no chunk matches the full-text half"
    assert re.search("kernel", rows[0][5], re.I) and re.search("meldung", rows[0][5], re.I)


def test_a_word_the_course_never_uses_is_searched_by_its_synonyms(two_courses, settings, tmp_path):
    """"Kaltstart" is not in chapter 3 (nor its parts); OpenThesaurus (a list in its text form) says "Systemstart",
    which is.
    The full-text half then finds the passage, and the word counts as covered in it (the answerability evidence)."""
    thesaurus = tmp_path / "openthesaurus.txt"
    thesaurus.write_text("# OpenThesaurus test list\nKaltstart;Systemstart;Anlauf (ugs.);das Booten\n"
                         "Zufall;Glück\n", encoding="utf-8")
    settings.SYNONYMS_FILE = str(thesaurus)
    _, course_b = two_courses
    index = active_index(course_b.pk)
    vector = np.random.default_rng(1).normal(size=index.dimension)
    with connection.cursor() as cursor:
        terms = retrieval.expand_query(cursor, course_b.pk, "Was passiert beim Kaltstart?", ["german"])
    assert "systemstart" in terms.extra and "zufall" not in terms.extra
    assert terms.words[-1][0] == "kaltstart" and terms.words[-1][2] == 0  # not in the course itself
    with_synonyms = search(course_b.pk, index.pk, vector, "Kaltstart", k=3, semantic_weight=0.0)
    without = search(course_b.pk, index.pk, vector, "Kaltstart", k=3, semantic_weight=0.0, synonyms=False)
    assert with_synonyms and "systemstart" in with_synonyms[0][5].lower() and with_synonyms[0][9] == 1.0
    assert not any(row[6] > 0 and row[9] for row in without)  # nothing matched, nothing covered


def test_passages_carry_the_evidence_for_answerability(two_courses):
    """Raw cosine similarity, the course background and the share of the question's words in the passage."""
    _, course_b = two_courses
    passages = retrieve(course_b.pk, "Wie zeige ich die Kernel-Meldungen an?", k=3)
    top = passages[0]
    assert -1 <= top.background <= top.similarity <= 1 and 0 < top.coverage <= 1
    assert top.embedding_model == "static"
    unrelated = retrieve(course_b.pk, "Wie backe ich einen Käsekuchen?", k=3)
    assert max(p.coverage for p in unrelated) == 0.0


def _share(a, b):
    """The share of the shorter passage's word trigrams that the other holds."""
    grams_a, grams_b = retrieval._trigrams(a.text), retrieval._trigrams(b.text)
    return len(grams_a & grams_b) / max(1, min(len(grams_a), len(grams_b)))


def test_the_same_text_uploaded_twice_is_one_source_not_two(two_courses, monkeypatch):
    """Chapter 3 again, as plain text cut into other passages (a script uploaded as HTML and as PDF): a question
    gets five different passages, the better-ranked copy of each pair, and still the passage that answers it."""
    _, course_b = two_courses
    html = Document.objects.get(course=course_b)
    copy = "\n\n".join(Chunk.objects.filter(document=html).order_by("ordinal").values_list("text", flat=True))
    document = add_document(course_b, "kapitel3.txt", copy.encode(), enqueue=False)
    assert ingest_document(document.pk) == "ready"
    question = "Welche Befehle zeigen die Systemmeldungen von journald?"

    passages = retrieve(course_b.pk, question, k=5)
    assert len(passages) == 5 and any("journalctl" in p.text for p in passages)
    assert all(_share(a, b) < retrieval.DUPLICATE_SHARE for i, a in enumerate(passages) for b in passages[:i])

    monkeypatch.setattr(retrieval, "DUPLICATE_SHARE", 1.01)  # nothing counts as a copy: the pairs come back
    plain = retrieve(course_b.pk, question, k=5)
    assert any(_share(a, b) >= 0.8 for i, a in enumerate(plain) for b in plain[:i])
    assert {p.document_id for p in plain} == {html.pk, document.pk}


def test_collapsing_keeps_the_order_and_the_better_ranked_copy():
    def passage(chunk_id, text):
        return Passage(chunk_id=chunk_id, course_id=1, document_id=chunk_id, document_title="", section_path="",
                       page=None, text=text, score=1.0 / chunk_id)

    text = ("Mit journalctl -b zeigen Sie die Meldungen des letzten Systemstarts an, mit -k nur die des Kernels. "
            "Die Protokolle liegen dauerhaft unter /var/log/journal, wenn dieses Verzeichnis existiert; sonst hält "
            "journald sie nur im Speicher unter /run/log/journal, und sie gehen beim Herunterfahren verloren.")
    shifted = "Vorher steht ein anderer Satz. " + text[:-30]  # the same text cut at other places
    found = retrieval.distinct([passage(1, text), passage(2, "Ganz etwas anderes steht hier im Text."),
                                passage(3, shifted), passage(4, "kurz"), passage(5, "kurz")])
    assert [p.chunk_id for p in found] == [1, 2, 4, 5]  # too short to compare: never dropped


def test_no_query_and_no_index_give_no_passages(two_courses, db):
    empty = Course.objects.create(title="leer")
    assert retrieve(empty.pk, "UEFI") == []
    assert retrieve(two_courses[0].pk, "   ") == []


def test_ten_thousand_random_queries_never_cross_courses(two_courses):
    """Isolation lives in the SQL: whatever the query and plan, only the asked course's chunks come back."""
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
                      k=rng.choice([1, 5, 10, 50]), path=rng.choice(["exact", "hnsw"]))  # both plans
        assert rows, "every query finds something in its own course"
        assert {row[0] for row in rows} <= ids[course_id]


def make_interleaved_courses(chunks, rng):
    """Two courses of synthetic 64-d chunks whose vectors share the same 20 topics: under a course filter
    every other neighbour in the HNSW graph belongs to the wrong course (the hard case for filtering)."""
    topics = rng.normal(size=(20, 64))
    courses = []
    for title in ("X", "Y"):
        course = Course.objects.create(title=title)
        index = EmbeddingIndex.objects.create(course=course, model="synthetic", dimension=64)
        document = Document.objects.create(course=course, title=title, filename="x.txt", sha256=title * 64,
                                           kind="txt", status=Document.READY, index=index, chunks_total=chunks)
        vectors = topics[rng.integers(0, 20, chunks)] + 0.6 * rng.normal(size=(chunks, 64))
        Chunk.objects.bulk_create([Chunk(course=course, document=document, index=index, ordinal=i, text=f"{i}",
                                         embedding=vector / np.linalg.norm(vector), dimension=64)
                                   for i, vector in enumerate(vectors)], batch_size=500)
        courses.append((course.pk, index.pk))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE courses_chunk")
    return courses, topics


@pytest.fixture
def interleaved_courses(db):
    """Two courses of 1,500 chunks each, interleaved in vector space."""
    rng = np.random.default_rng(3)
    courses, topics = make_interleaved_courses(1500, rng)
    return courses, topics, rng


def test_the_hnsw_path_keeps_to_the_course_and_matches_exact_search(interleaved_courses):
    """The large-course plan walks the HNSW index (iterative scan) with the course filter in the SQL: only the
    course's chunks come back, and its top 5 agree with exact search inside the course."""
    courses, topics, rng = interleaved_courses
    owned = {course: set(Chunk.objects.filter(course_id=course).values_list("pk", flat=True)) for course, _ in courses}
    overlaps = []
    for i in range(60):
        course, index = courses[i % 2]
        vector = topics[i % 20] + 0.6 * rng.normal(size=64)
        found = {}
        for path in ("hnsw", "exact"):
            rows = search(course, index, vector, "nichts", k=5, keyword_weight=0.0, path=path)
            assert len(rows) == 5 and {row[0] for row in rows} <= owned[course]
            found[path] = {row[0] for row in rows}
        overlaps.append(len(found["hnsw"] & found["exact"]) / 5)
    assert np.mean(overlaps) >= 0.95, f"recall@5 of the HNSW path against exact search: {np.mean(overlaps):.3f}"
    course, index = courses[0]
    with connection.cursor() as cursor:  # and it really is the HNSW index that serves it, not a course scan
        plan = retrieval.execute_planned(cursor, "EXPLAIN " + retrieval.hybrid_sql(64, "hnsw"), {
            "vector": "[" + ",".join(["0.1"] * 64) + "]", "course": course, "index": index, "text": "x",
            "configs": ["german"], "documents": None, "candidates": 40, "k": 5, "rrf_k": 2, "max_share": 0.2,
            "pool": 200, "row_budget": 2000, "semantic_weight": 1.0, "keyword_weight": 1.0, "word_forms": [],
            "word_weights": []}, hnsw=True)
        cursor.execute("SHOW enable_seqscan")  # the planner setting stays inside that one statement
        assert cursor.fetchone()[0] == "on"
    plan = "\n".join(row[0] for row in plan)
    assert "Index Scan using chunk_hnsw_64" in plan, plan


def test_the_semantic_plan_follows_the_course_size(interleaved_courses, monkeypatch):
    """Small courses (or a small share of the table) are searched exactly, large ones through HNSW."""
    assert retrieval.semantic_path(retrieval.HNSW_MIN_ROWS - 1, retrieval.HNSW_MIN_ROWS) == "exact"
    assert retrieval.semantic_path(20_000, 10**6) == "hnsw"
    assert retrieval.semantic_path(4_000, 10**6) == "exact"
    assert retrieval.semantic_path(20_000, 10**8) == "exact"  # a tiny share of the table: HNSW would wander
    assert retrieval.semantic_path(50_000, -1) == "hnsw"  # table never analysed yet
    (course, index), _ = interleaved_courses[0]
    topic = interleaved_courses[1][0]
    for minimum, hnsw in [(2000, False), (1000, True)]:
        monkeypatch.setattr(retrieval, "HNSW_MIN_ROWS", minimum)  # the course has 1,500 chunks
        with CaptureQueriesContext(connection) as queries:
            assert search(course, index, topic, "nichts", k=5)
        statement = next(q["sql"] for q in queries.captured_queries if "WITH nearest" in q["sql"])
        assert ("index_id + 0 = " in statement) == hnsw  # the HNSW path's filter of the semantic half


@pytest.mark.django_db(transaction=True)
def test_the_hnsw_path_in_autocommit_leaves_the_session_as_it_was():
    """Outside a transaction the HNSW path sends its planner setting and the statement as one implicit
    transaction: the setting ends with it (connections are reused), and isolation holds there too."""
    courses, topics = make_interleaved_courses(300, np.random.default_rng(4))
    (course, index), (other, _) = courses
    theirs = set(Chunk.objects.filter(course_id=other).values_list("pk", flat=True))
    assert not connection.in_atomic_block
    for topic in topics[:5]:
        rows = search(course, index, topic, "nichts", k=10, path="hnsw")
        assert len(rows) == 10 and not {row[0] for row in rows} & theirs
    with connection.cursor() as cursor:
        cursor.execute("SHOW enable_seqscan")
        assert cursor.fetchone()[0] == "on"


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


def test_a_large_course_gets_its_own_hnsw_index_that_search_uses(two_courses, monkeypatch):
    """Past COURSE_HNSW_MIN_ROWS chunks a course gets a partial HNSW index of its own (built after ingestion);
    search takes the "course" path through it and finds what exact search finds; the index goes with the
    embedding index."""
    from courses import vector_index
    from courses.ingest import index_large_course
    from courses.retrieval import course_setup, semantic_path

    course_a, course_b = two_courses
    index = active_index(course_a.pk)
    name = vector_index.index_name(index.pk)
    assert course_setup(course_a.pk)[3][2] is False
    monkeypatch.setattr(vector_index, "COURSE_HNSW_MIN_ROWS", 50)
    with connection.cursor() as cursor:  # (the test's transaction) no deferred checks pending at CREATE INDEX
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    index_large_course(index)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_indexdef(to_regclass(%s))", [name])
        definition = cursor.fetchone()[0]
    assert "hnsw" in definition and f"index_id = {index.pk}" in definition
    rows, total, own = course_setup(course_a.pk)[3]
    assert own is True and semantic_path(rows, total, course_index=own) == "course"
    assert course_setup(course_b.pk)[3][2] is False  # the other course has none

    vector = get_embedder(index.model).embed_query("Wie fahre ich das System herunter?")
    exact = search(course_a.pk, index.pk, vector, "Wie fahre ich das System herunter?", k=5, path="exact")
    chosen = search(course_a.pk, index.pk, vector, "Wie fahre ich das System herunter?", k=5)
    assert [r[0] for r in chosen] == [r[0] for r in exact]
    with connection.cursor() as cursor:  # the planner can use it for the course's own filter
        cursor.execute("SET LOCAL enable_sort = off")
        semantic_only = ("WITH " + retrieval.hybrid_sql(index.dimension, "course").split("WITH ", 1)[1]
                         .split("lexemes AS (")[0].rstrip().rstrip(",") + "\nSELECT id FROM semantic")
        cursor.execute("EXPLAIN " + semantic_only,
                       {"vector": "[" + ",".join(f"{x:.6f}" for x in vector) + "]", "course": course_a.pk,
                        "index": index.pk, "documents": None, "candidates": 40})
        assert name in "\n".join(row[0] for row in cursor.fetchall())

    index.delete()
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [name])
        assert cursor.fetchone()[0] is None
