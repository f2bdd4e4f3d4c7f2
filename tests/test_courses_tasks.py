"""The ingestion task on a real Celery worker: progress, and a worker killed mid-ingestion."""

import os
import signal
import uuid
from pathlib import Path

import pytest

from courses.documents import add_document
from courses.models import Chunk, Course, Document
from courses.tasks import ingest_document
from tests.support import start_worker, stop_worker, wait_for

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "deploy" / "demo_corpus" / "debian-reference-de"
pytestmark = pytest.mark.usefixtures("own_ingest_queue")  # these tests' workers, not a session worker, ingest


def start_ingest_worker(env, log_path):
    """A real worker on the ingest queue only, in its own process group (so it can be killed whole)."""
    return start_worker(env, log_path, "ingest", name=f"ingest-{uuid.uuid4().hex[:8]}")


@pytest.mark.django_db(transaction=True)
def test_a_killed_worker_s_document_finishes_on_restart_without_duplicates(worker_env, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    env = dict(worker_env, EMBEDDING_MODEL="static", TUTOR_MEDIA_ROOT=str(settings.MEDIA_ROOT))
    course = Course.objects.create(title="Debian")
    document = add_document(course, "debian-reference.de.pdf", (CORPUS / "debian-reference.de.pdf").read_bytes(),
                            enqueue=False)
    log_path = tmp_path / "worker.log"
    worker = start_ingest_worker(env, log_path)
    try:
        ingest_document.delay(document.pk)
        state = wait_for(lambda: Document.objects.filter(pk=document.pk, pages_done__gt=0)
                         .values_list("status", flat=True).first(), 60, "the ingestion to start")
        os.killpg(worker.pid, signal.SIGKILL)  # the whole worker, children included, mid-ingestion
        worker.wait(timeout=10)
        document.refresh_from_db()
        assert state in {Document.PARSING, Document.EMBEDDING} and document.status != Document.READY
        assert not Chunk.objects.filter(document=document).exists()  # nothing half-written

        worker = start_ingest_worker(env, log_path)  # a new worker resumes what the killed one left
        wait_for(lambda: Document.objects.filter(pk=document.pk, status=Document.READY).exists(), 120,
                 f"the resumed ingestion:\n{log_path.read_text()[-3000:]}")
        document.refresh_from_db()
        chunks = Chunk.objects.filter(document=document)
        assert document.pages_done == document.pages_total == 276
        assert chunks.count() == document.chunks_total == document.chunks_done > 500
        assert len(set(chunks.values_list("ordinal", flat=True))) == chunks.count()

        assert ingest_document.delay(document.pk).get(timeout=60) == "unchanged"  # the same content again
        assert Chunk.objects.filter(document=document).count() == document.chunks_total
    finally:
        stop_worker(worker)


@pytest.mark.django_db(transaction=True)
def test_a_queued_document_whose_message_was_lost_is_indexed_when_a_worker_starts(worker_env, settings, tmp_path):
    """Redis restarted without its dump: the document says "queued" but no message exists; a new worker indexes it."""
    settings.MEDIA_ROOT = tmp_path / "media"
    env = dict(worker_env, EMBEDDING_MODEL="static", TUTOR_MEDIA_ROOT=str(settings.MEDIA_ROOT))
    course = Course.objects.create(title="Kapitel 3")
    document = add_document(course, "ch03.de.html", (CORPUS / "ch03.de.html").read_bytes(), enqueue=False)
    assert document.status == Document.QUEUED  # and nothing was sent to the broker
    log_path = tmp_path / "worker.log"
    worker = start_ingest_worker(env, log_path)
    try:
        wait_for(lambda: Document.objects.filter(pk=document.pk, status=Document.READY).exists(), 120,
                 f"the ingestion on worker start:\n{log_path.read_text()[-3000:]}")
        assert Chunk.objects.filter(document=document).count() == Document.objects.get(pk=document.pk).chunks_total
    finally:
        stop_worker(worker)


@pytest.mark.django_db(transaction=True)
def test_a_small_upload_does_not_wait_for_another_course_s_book(worker_env, settings, tmp_path):
    """One ingest worker, taking one document at a time: the 276-page PDF of one course is indexed in turns,
    and a small text another lecturer uploads meanwhile is ready long before the book (its first turn goes
    before the book's later turns); while it waits, its place in the queue is shown."""
    from courses.documents import status_text
    from courses.tasks import queue_positions

    settings.MEDIA_ROOT = tmp_path / "media"
    env = dict(worker_env, EMBEDDING_MODEL="static", TUTOR_MEDIA_ROOT=str(settings.MEDIA_ROOT),
               INGEST_SLICE_SECONDS="0.3")
    log_path = tmp_path / "worker.log"
    worker = start_ingest_worker(env, log_path)
    try:
        book = add_document(Course.objects.create(title="Debian"), "debian-reference.de.pdf",
                            (CORPUS / "debian-reference.de.pdf").read_bytes())
        wait_for(lambda: Document.objects.filter(pk=book.pk, pages_done__gt=0).exists(), 60, "the book to start")
        small = add_document(Course.objects.create(title="Kurz"), "kurz.md",
                             b"# Kurz\n\nDer Init-Prozess hat die Prozessnummer 1.\n")
        small.refresh_from_db()
        ahead = queue_positions([small]).get(small.pk)
        assert ahead == 1 and "1 document is indexed before this one" in status_text(small, ahead)
        wait_for(lambda: Document.objects.filter(pk=small.pk, status=Document.READY).exists(), 60,
                 f"the small text:\n{log_path.read_text()[-3000:]}")
        assert Document.objects.get(pk=book.pk).status != Document.READY  # the book is still taking turns
        wait_for(lambda: Document.objects.filter(pk=book.pk, status=Document.READY).exists(), 300,
                 f"the book:\n{log_path.read_text()[-3000:]}")
        book.refresh_from_db()
        assert Chunk.objects.filter(document=book).count() == book.chunks_total > 500
        assert "the rest after other documents" in log_path.read_text()
    finally:
        stop_worker(worker)


def test_one_turn_claim_per_document_and_a_lapsed_claim_frees_nothing_of_another_s(settings):
    """turn_claim (a redis-py Lock): a second claim waits for the first's lease; releasing frees the document; a
    turn whose lease ran out while another worker claimed the document leaves that worker's claim alone."""
    import redis

    from courses.tasks import TURN_LEASE_SECONDS, _claim_key, turn_claim

    client = redis.Redis.from_url(settings.REDIS_URL)
    document_id = 900000 + os.getpid()
    key = _claim_key(document_id)
    client.delete(key)
    with turn_claim(document_id) as first:
        assert first == 0
        with turn_claim(document_id) as second:
            assert 1 <= second <= TURN_LEASE_SECONDS
    with turn_claim(document_id) as again:
        assert again == 0  # the first turn let go
        client.set(key, b"another worker's token", ex=TURN_LEASE_SECONDS)  # as if this lease had run out
    assert client.get(key) == b"another worker's token"
    client.delete(key)
    client.close()
