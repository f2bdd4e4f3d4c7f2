"""The ingestion pipeline: stored file → sections → chunks → vectors → PostgreSQL, with progress.

``ingest_document(document_id)`` is idempotent: a document whose content and embedding index are
already indexed is left alone; otherwise its sections and chunks are replaced in ONE transaction, so a
killed worker leaves either the old state or the new one, never a half-written or duplicated one.

With a time ``budget`` (the ingest task's slice, settings.INGEST_SLICE_SECONDS) a long document stops after
that much work and returns "continued": what it parsed and the vectors so far wait in a staging file beside the
uploads, and the task queues the rest behind other documents (courses.tasks). So one 300-page book never keeps
another course's three-page text waiting for more than a slice.
"""

import contextlib
import json
import logging
import os
import time
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from config import metrics
from courses.chunking import ChunkDraft, chunk_sections
from courses.embeddings import EmbeddingError, get_embedder
from courses.language import ts_config
from courses.models import Chunk, Course, Document, EmbeddingIndex, Section
from courses.parsing import ParsedDocument, ParsedSection, ParseError, parse_file

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


def passage_input(document_title, section, text):
    """What is embedded for a passage: its section's title above its text (the context a question may name
    that the passage itself leaves out)."""
    return f"{section.title}\n{text}"


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


def ingest_document(document_id, *, model=None, budget=None):
    """Parse, chunk, embed and store one document; returns "ready", "unchanged", "failed" or "gone", or
    "continued" when a time budget (seconds) ran out first (the work so far is staged for the next call)."""
    document = Document.objects.filter(pk=document_id).first()
    if document is None:
        return "gone"
    index, changed = ensure_index(document.course_id, model)
    if changed:
        _requeue_others(document)
    if (document.status == Document.READY and document.index_id == index.pk
            and document.indexed_sha256 == document.sha256):
        _Staging(document, index).remove()
        return "unchanged"
    sha = document.sha256
    started = time.monotonic()
    staging = _Staging(document, index)
    try:
        staged = staging.load()
        embedder = get_embedder(index.model)
        if staged is None:
            _progress(document.pk, status=Document.PARSING, error_code="", error_detail="", pages_done=0,
                      chunks_done=0, chunks_total=0)
            try:
                path = document.file.path
                open(path, "rb").close()
            except (FileNotFoundError, ValueError) as exc:
                raise ParseError("missing_file", str(exc)) from exc
            parsed = parse_file(path, document.kind, title=document.title,
                                progress=lambda done, total: _progress(document.pk, pages_done=done, pages_total=total))
            drafts = chunk_sections(parsed.sections, embedder.count_tokens)
            if not drafts:
                raise ParseError("empty")
            vectors = []
        else:
            parsed, drafts, vectors = staged
            log.info("document %s: continuing its indexing at passage %d of %d", document_id, len(vectors),
                     len(drafts))
        resumed_at = len(vectors)
        _progress(document.pk, status=Document.EMBEDDING, pages_done=parsed.pages_total,
                  pages_total=parsed.pages_total, chunks_total=len(drafts), chunks_done=len(vectors),
                  language=parsed.language)
        for start in range(len(vectors), len(drafts), EMBED_BATCH):
            # every turn embeds at least one batch, so each one makes progress
            if budget is not None and start > resumed_at and time.monotonic() - started > budget:
                staging.save(parsed, drafts, vectors)
                _count_turn(parsed.pages_total if staged is None else 0, len(vectors) - resumed_at, started)
                log.info("document %s: %d of %d passages after %.1f s; the rest after other documents",
                         document_id, len(vectors), len(drafts), time.monotonic() - started)
                return "continued"
            batch = drafts[start:start + EMBED_BATCH]
            inputs = [passage_input(document.title, parsed.sections[d.section_index], d.text) for d in batch]
            vectors.extend(embedder.embed_passages(inputs))
            _progress(document.pk, chunks_done=start + len(batch))
        written = _store(document.pk, sha, index, parsed, drafts, vectors)
        _count_turn(parsed.pages_total if staged is None else 0, len(vectors) - resumed_at, started)
    except ParseError as exc:
        staging.remove()
        return _fail(document, exc.code, exc.detail)
    except EmbeddingError as exc:
        return _fail(document, "embedding", str(exc))
    except Exception as exc:  # a clear state for the lecturer, the traceback for the admin
        log.exception("ingestion of document %s crashed", document_id)
        staging.remove()
        return _fail(document, "internal", f"{type(exc).__name__}: {exc}")
    staging.remove()
    if written:
        log.info("document %s: %d pages, %d chunks in %.1f s (this part)", document_id, parsed.pages_total,
                 len(drafts), time.monotonic() - started)
        index_large_course(index)
    return "ready" if written else "gone"


def _count_turn(pages, passages, started):
    """Pages parsed, passages embedded and seconds spent in one turn, for /metrics (pages/s, passages/s)."""
    metrics.inc("tutor_ingest_pages_total", pages)
    metrics.inc("tutor_ingest_passages_total", passages)
    metrics.inc("tutor_ingest_seconds_total", time.monotonic() - started)


class _Staging:
    """The parsed sections, chunk drafts and vectors so far of a document whose indexing takes several turns,
    in two files beside the uploads (JSON and .npy), written whole or not at all. Only valid for the same
    content, embedding index and model; anything else starts afresh."""

    def __init__(self, document, index):
        folder = Path(settings.MEDIA_ROOT) / "ingest-staging"
        self.json, self.npy = folder / f"{document.pk}.json", folder / f"{document.pk}.npy"
        self.key = {"sha256": document.sha256, "index": index.pk, "model": index.model}

    def load(self):
        """(parsed, drafts, vectors) staged for this content and index, else None."""
        try:
            data = json.loads(self.json.read_text())
            if data.get("key") != self.key:
                return None
            vectors = list(np.load(self.npy)) if data["vectors"] else []
        except (OSError, ValueError, KeyError):
            return None
        if len(vectors) != data["vectors"]:
            return None
        sections = [ParsedSection(title=s["title"], path=s["path"], level=s["level"],
                                  paragraphs=[(page, "") for page in s["pages"]]) for s in data["sections"]]
        parsed = ParsedDocument(sections=sections, pages_total=data["pages_total"], language=data["language"])
        drafts = [ChunkDraft(*row) for row in data["drafts"]]
        return parsed, drafts, vectors

    def save(self, parsed, drafts, vectors):
        """Stage the work so far (the vectors first, then the JSON that vouches for them)."""
        self.json.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.npy.with_suffix(".tmp.npy")
        np.save(tmp, np.asarray(vectors, dtype=np.float32))
        os.replace(tmp, self.npy)
        data = {"key": self.key, "vectors": len(vectors), "pages_total": parsed.pages_total,
                "language": parsed.language,
                "sections": [{"title": s.title, "path": s.path, "level": s.level,
                              "pages": [min(s.pages), max(s.pages)] if s.pages else []} for s in parsed.sections],
                "drafts": [[d.section_index, d.ordinal, d.text, d.page, d.token_count] for d in drafts]}
        tmp = self.json.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self.json)

    def remove(self):
        """Forget the staged work (done, failed, or no longer wanted)."""
        for path in (self.json, self.npy):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


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
            status=Document.READY, index=index, indexed_sha256=sha, language=parsed.language, indexed_at=timezone.now(),
            pages_done=parsed.pages_total, pages_total=parsed.pages_total,
            chunks_done=len(drafts), chunks_total=len(drafts), error_code="", error_detail="")
        refresh_course_terms(document.course_id)
    return True


def _requeue_others(document):
    """After a model switch, every other document of the course is indexed again (by the worker)."""
    from courses.tasks import enqueue_ingestion

    for other in Document.objects.filter(course_id=document.course_id).exclude(pk=document.pk):
        enqueue_ingestion(other.pk)
