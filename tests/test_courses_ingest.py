"""The ingestion pipeline: idempotent by content, replaces chunks atomically, fails clearly, rebuilds on a model change."""

from pathlib import Path

import numpy as np
from django.db import connection
from django.utils import translation

from courses.documents import add_document, delete_document, replace_document
from courses.ingest import ingest_document
from courses.models import Chunk, Course, CourseTerm, Document, EmbeddingIndex, Section

CORPUS = Path(__file__).resolve().parent.parent / "deploy" / "demo_corpus" / "debian-reference-de"


def add(course, name, data=None, **kwargs):
    return add_document(course, name, data if data is not None else (CORPUS / name).read_bytes(), enqueue=False, **kwargs)


def test_ingestion_stores_sections_chunks_vectors_and_german_full_text(course):
    document = add(course, "ch03.de.html")
    assert ingest_document(document.pk) == "ready"
    document.refresh_from_db()
    assert document.status == Document.READY and document.language == "de"
    assert document.chunks_total == document.chunks_done == Chunk.objects.filter(document=document).count() > 20
    chunk = Chunk.objects.filter(document=document, text__contains="UEFI").select_related("section", "index").first()
    assert chunk.course_id == course.pk and chunk.section.path.startswith("3 Die Systeminitialisierung › 3.1")
    assert chunk.index.model == "static" and len(chunk.embedding) == chunk.index.dimension
    with connection.cursor() as cursor:  # the German stemmer: "Systeme" finds "System"
        cursor.execute("SELECT count(*) FROM courses_chunk WHERE document_id = %s AND "
                       "search_vector @@ to_tsquery('german', 'Systeme')", [document.pk])
        assert cursor.fetchone()[0] > 0
        cursor.execute("SELECT count(*) FROM courses_chunk WHERE document_id = %s AND "
                       "search_vector @@ 'journalctl'::tsquery", [document.pk])
        with_term = cursor.fetchone()[0]
    term = CourseTerm.objects.get(course=course, lexeme="journalctl")  # the idf of keyword search
    assert term.chunks == with_term > 0
    delete_document(document)
    assert not CourseTerm.objects.filter(course=course).exists()


def test_ingesting_the_same_content_again_changes_nothing(course):
    document = add(course, "ch03.de.html")
    ingest_document(document.pk)
    ids = set(Chunk.objects.filter(document=document).values_list("pk", flat=True))
    assert ingest_document(document.pk) == "unchanged"
    assert set(Chunk.objects.filter(document=document).values_list("pk", flat=True)) == ids
    Document.objects.filter(pk=document.pk).update(indexed_sha256="")  # force a full re-run
    assert ingest_document(document.pk) == "ready"
    assert Chunk.objects.filter(document=document).count() == len(ids)  # replaced, not duplicated
    assert add(course, "ch03.de.html").pk == document.pk


def test_replaced_content_replaces_the_chunks(course):
    document = add(course, "notes.md", b"# Alt\n\nDer alte Text handelt von Katzen.")
    ingest_document(document.pk)
    replace_document(document, "notes.md", b"# Neu\n\nDer neue Text handelt von Hunden.")
    assert ingest_document(document.pk) == "ready"
    texts = list(Chunk.objects.filter(document=document).values_list("text", flat=True))
    assert texts == ["Der neue Text handelt von Hunden."]
    assert list(Section.objects.filter(document=document).values_list("path", flat=True)) == ["Neu"]


def test_a_broken_pdf_fails_with_a_clear_reason_and_leaves_other_documents_intact(course):
    good = add(course, "ch03.de.html")
    ingest_document(good.pk)
    before = Chunk.objects.filter(document=good).count()
    broken = add(course, "kaputt.pdf", b"%PDF-1.7\n" + b"\x13\x37 not a pdf body " * 500)
    assert ingest_document(broken.pk) == "failed"
    broken.refresh_from_db()
    assert broken.status == Document.FAILED and broken.error_code == "broken_pdf"
    with translation.override("de"):
        assert broken.error_message.startswith("Die PDF-Datei ist beschädigt")
    with translation.override("en"):
        assert broken.error_message.startswith("The PDF file is damaged")
    good.refresh_from_db()
    assert good.status == Document.READY and Chunk.objects.filter(document=good).count() == before
    assert not Chunk.objects.filter(document=broken).exists()


def test_changing_the_embedding_model_rebuilds_the_index_and_never_mixes_vectors(course, settings):
    first = add(course, "ch03.de.html")
    ingest_document(first.pk)
    old_index = EmbeddingIndex.objects.get(course=course, active=True)
    second = add(course, "notes.txt", b"Ein kurzer Text ueber Paketverwaltung mit apt und dpkg.")
    assert ingest_document(second.pk, model="minilm") == "ready"
    new_index = EmbeddingIndex.objects.get(course=course, active=True)
    assert new_index.model == "minilm" and new_index.dimension == 384
    assert not EmbeddingIndex.objects.filter(pk=old_index.pk).exists()
    assert set(Chunk.objects.filter(course=course).values_list("index_id", flat=True)) == {new_index.pk}
    first.refresh_from_db()
    assert first.status == Document.QUEUED  # queued again for the new model
    assert ingest_document(first.pk, model="minilm") == "ready"
    assert set(Chunk.objects.filter(course=course).values_list("index_id", flat=True)) == {new_index.pk}


def test_a_long_document_is_indexed_in_turns_with_the_same_result(course, monkeypatch):
    """With a time budget, indexing stops after it ("continued"), keeps its work in a staging file, and the
    next call goes on from there: the result equals indexing the document in one go."""
    import courses.ingest as ingest

    monkeypatch.setattr(ingest, "EMBED_BATCH", 16)
    whole = add(Course.objects.create(title="In one go"), "ch03.de.html")
    assert ingest_document(whole.pk) == "ready"
    document = add(course, "ch03.de.html")
    turns = []
    while (result := ingest_document(document.pk, budget=0.0)) == "continued":  # one batch per turn
        turns.append(Document.objects.get(pk=document.pk).chunks_done)
        assert Document.objects.get(pk=document.pk).status == Document.EMBEDDING
        assert not Chunk.objects.filter(document=document).exists()  # nothing half-written
        assert (Path(ingest.settings.MEDIA_ROOT) / "ingest-staging" / f"{document.pk}.json").exists()
    assert result == "ready" and len(turns) >= 3 and turns == sorted(turns)
    assert not (Path(ingest.settings.MEDIA_ROOT) / "ingest-staging" / f"{document.pk}.json").exists()

    def rows(doc):
        return list(Chunk.objects.filter(document=doc).order_by("ordinal")
                    .values_list("ordinal", "text", "page", "section__path"))

    assert rows(document) == rows(whole)
    mine = Chunk.objects.filter(document=document).order_by("ordinal").values_list("embedding", flat=True)
    theirs = Chunk.objects.filter(document=whole).order_by("ordinal").values_list("embedding", flat=True)
    assert all(np.abs(np.asarray(a) - np.asarray(b)).max() < 1e-5 for a, b in zip(mine, theirs, strict=True))


def test_staged_work_of_replaced_content_is_not_used(course, monkeypatch):
    """The staging file belongs to one content and index: after a replacement the indexing starts afresh."""
    import courses.ingest as ingest

    monkeypatch.setattr(ingest, "EMBED_BATCH", 16)
    document = add(course, "ch03.de.html")
    assert ingest_document(document.pk, budget=0.0) == "continued"
    replace_document(document, "ch01.de.html", (CORPUS / "ch01.de.html").read_bytes())
    while ingest_document(document.pk, budget=5.0) == "continued":
        pass
    document.refresh_from_db()
    assert document.status == Document.READY and document.filename == "ch01.de.html"
    assert Chunk.objects.filter(document=document, text__contains="Debian").exists()
    assert Chunk.objects.filter(document=document).count() == document.chunks_total
