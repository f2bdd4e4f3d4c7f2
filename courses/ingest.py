"""The ingestion pipeline: stored file → sections → chunks → vectors → PostgreSQL, with progress.

``ingest_document(document_id)`` is idempotent: a document whose content and embedding index are
already indexed is left alone; otherwise its sections and chunks are replaced in ONE transaction, so a
killed worker leaves either the old state or the new one, never a half-written or duplicated one.
"""

import contextlib
import logging
import time

from django.db import connection, transaction

from courses.chunking import chunk_sections
from courses.embeddings import EmbeddingError, get_embedder
from courses.language import ts_config
from courses.models import Chunk, Course, Document, EmbeddingIndex, Section
from courses.parsing import ParseError, parse_file

log = logging.getLogger(__name__)

EMBED_BATCH = 64  # progress is saved after every batch


def active_index(course_id, model=None):
    """The course's active embedding index, or None when nothing was indexed yet."""
    return EmbeddingIndex.objects.filter(course_id=course_id, active=True).first()


def ensure_index(course_id, model=None):
    """(index, changed): the course's active index for the configured model; a new model starts a new index.

    Switching deletes the old index with its chunks (vectors of two models are never mixed); the caller
    re-ingests the course's documents.
    """
    from django.conf import settings

    model = model or settings.EMBEDDING_MODEL
    with transaction.atomic():
        Course.objects.select_for_update().filter(pk=course_id).first()
        index = EmbeddingIndex.objects.filter(course_id=course_id, active=True).first()
        if index is not None and index.model == model:
            return index, False
        dimension = get_embedder(model).dimension
        if index is not None:
            log.info("course %s: embedding model %s → %s, rebuilding the index", course_id, index.model, model)
            Document.objects.filter(index=index).update(index=None, indexed_sha256="", status=Document.QUEUED)
            index.delete()
        return EmbeddingIndex.objects.create(course_id=course_id, model=model, dimension=dimension), True


def refresh_course_terms(course_id):
    """Recount in how many of the course's chunks each stemmed term occurs (the idf of keyword search)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT id FROM courses_course WHERE id = %s FOR UPDATE", [course_id])  # one at a time
        cursor.execute("DELETE FROM courses_courseterm WHERE course_id = %s", [course_id])
        cursor.execute("INSERT INTO courses_courseterm (course_id, lexeme, chunks) SELECT %s, word, ndoc FROM ts_stat(%s)",
                       [course_id, f"SELECT search_vector FROM courses_chunk WHERE course_id = {int(course_id)}"])


def _progress(document_id, **fields):
    Document.objects.filter(pk=document_id).update(**fields)


def _fail(document, code, detail=""):
    log.warning("ingestion of document %s (%s) failed: %s %s", document.pk, document.filename, code, detail)
    _progress(document.pk, status=Document.FAILED, error_code=code, error_detail=detail[:2000])
    return "failed"


def ingest_document(document_id, *, model=None):
    """Parse, chunk, embed and store one document; returns "ready", "unchanged", "failed" or "gone"."""
    document = Document.objects.filter(pk=document_id).first()
    if document is None:
        return "gone"
    index, changed = ensure_index(document.course_id, model)
    if changed:
        _requeue_others(document)
    if (document.status == Document.READY and document.index_id == index.pk
            and document.indexed_sha256 == document.sha256):
        return "unchanged"
    sha = document.sha256
    _progress(document.pk, status=Document.PARSING, error_code="", error_detail="", pages_done=0,
              chunks_done=0, chunks_total=0)
    started = time.monotonic()
    try:
        try:
            path = document.file.path
            open(path, "rb").close()
        except (FileNotFoundError, ValueError) as exc:
            raise ParseError("missing_file", str(exc)) from exc
        parsed = parse_file(path, document.kind, title=document.title,
                            progress=lambda done, total: _progress(document.pk, pages_done=done, pages_total=total))
        embedder = get_embedder(index.model)
        drafts = chunk_sections(parsed.sections, embedder.count_tokens)
        if not drafts:
            raise ParseError("empty")
        _progress(document.pk, status=Document.EMBEDDING, pages_done=parsed.pages_total,
                  pages_total=parsed.pages_total, chunks_total=len(drafts), language=parsed.language)
        vectors = []
        for start in range(0, len(drafts), EMBED_BATCH):
            batch = drafts[start:start + EMBED_BATCH]
            inputs = [f"{parsed.sections[d.section_index].title}\n{d.text}" for d in batch]
            vectors.extend(embedder.embed_passages(inputs))
            _progress(document.pk, chunks_done=start + len(batch))
        written = _store(document.pk, sha, index, parsed, drafts, vectors)
    except ParseError as exc:
        return _fail(document, exc.code, exc.detail)
    except EmbeddingError as exc:
        return _fail(document, "embedding", str(exc))
    except Exception as exc:  # a clear state for the lecturer, the traceback for the admin
        log.exception("ingestion of document %s crashed", document_id)
        return _fail(document, "internal", f"{type(exc).__name__}: {exc}")
    if written:
        log.info("document %s: %d pages, %d chunks in %.1f s", document_id, parsed.pages_total, len(drafts),
                 time.monotonic() - started)
        index_large_course(index)
    return "ready" if written else "gone"


def index_large_course(index):
    """Give a course that has grown large its own partial HNSW index (courses.vector_index); a failure only
    costs search speed, so it is logged, never the document's state."""
    from courses.vector_index import ensure_course_hnsw

    try:
        rows = Chunk.objects.filter(index_id=index.pk).count()
        # inside a transaction (tests): a savepoint, so a failed build leaves it usable
        with transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext():
            ensure_course_hnsw(index.pk, index.dimension, rows)
    except Exception:
        log.exception("could not build the partial HNSW index of embedding index %s", index.pk)


def _store(document_id, sha, index, parsed, drafts, vectors):
    """Replace the document's sections and chunks in one transaction; False if it vanished or changed."""
    with transaction.atomic():
        document = Document.objects.select_for_update().filter(pk=document_id).first()
        if document is None or document.sha256 != sha:
            return False  # deleted, or replaced by a newer upload whose own task will index it
        if not EmbeddingIndex.objects.filter(pk=index.pk, active=True).exists():
            return False  # the course switched models meanwhile; the re-queued task indexes it
        Section.objects.filter(document_id=document_id).delete()  # chunks go with their sections
        Chunk.objects.filter(document_id=document_id).delete()
        sections = Section.objects.bulk_create([
            Section(document_id=document_id, path=s.path_text, title=s.title, level=s.level, order=i,
                    page_start=min(s.pages) if s.pages else None, page_end=max(s.pages) if s.pages else None)
            for i, s in enumerate(parsed.sections)
        ])
        Chunk.objects.bulk_create([
            Chunk(course_id=document.course_id, document_id=document_id, index_id=index.pk,
                  section_id=sections[d.section_index].pk, ordinal=d.ordinal, text=d.text, page=d.page,
                  token_count=d.token_count, embedding=vector, dimension=len(vector))
            for d, vector in zip(drafts, vectors, strict=True)
        ], batch_size=500)
        config = ts_config(parsed.language)
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE courses_chunk c SET search_vector ="
                " setweight(to_tsvector(%s::regconfig, s.title), 'C') || to_tsvector(%s::regconfig, c.text)"
                " FROM courses_section s WHERE s.id = c.section_id AND c.document_id = %s",
                [config, config, document_id])
        Document.objects.filter(pk=document_id).update(
            status=Document.READY, index=index, indexed_sha256=sha, language=parsed.language,
            pages_done=parsed.pages_total, pages_total=parsed.pages_total,
            chunks_done=len(drafts), chunks_total=len(drafts), error_code="", error_detail="")
        refresh_course_terms(document.course_id)
    return True


def _requeue_others(document):
    """After a model switch, every other document of the course is indexed again (by the worker)."""
    from courses.tasks import enqueue_ingestion

    for other in Document.objects.filter(course_id=document.course_id).exclude(pk=document.pk):
        enqueue_ingestion(other.pk)
