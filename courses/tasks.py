"""Celery tasks of the courses app (queue "ingest"); they take IDs and are idempotent."""

import contextlib
import logging
import threading

from celery import shared_task
from celery.signals import worker_process_init, worker_ready
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.heap import freeze_startup_objects
from config.periodic import recorded
from config.tasks import DAILY

log = logging.getLogger(__name__)


# Broker priorities (Redis: 0 is served first). A document's first turn goes before the later turns of long
# documents, so a short upload is indexed at once even while books are in the middle of theirs.
FIRST_TURN, LATER_TURN = 0, 6


TURN_LEASE_SECONDS = 30  # a turn's claim on its document, renewed every third of it while the turn runs


@shared_task(name="courses.tasks.ingest_document", acks_late=True, reject_on_worker_lost=True)
def ingest_document(document_id):
    """Index one document for one turn of at most settings.INGEST_SLICE_SECONDS (see courses.ingest); a long
    one queues its next turn behind the documents waiting now. Safe to run twice or after a crash.

    One turn at a time per document, on any worker: a message of the same document that arrives while another
    worker's turn runs (a redelivered task, resume_interrupted at a worker's start) comes back after that turn
    instead of indexing the document a second time beside it."""
    from courses.ingest import ingest_document as run

    with turn_claim(document_id) as wait:
        if wait:
            log.info("document %s: another worker is indexing it now; this turn comes back in %d s", document_id,
                     wait)
            ingest_document.apply_async((document_id,), priority=LATER_TURN, countdown=wait)
            return "busy"
        result = run(document_id, budget=settings.INGEST_SLICE_SECONDS)
    if result == "continued":
        ingest_document.apply_async((document_id,), priority=LATER_TURN)
    return result


def _claim_key(document_id):
    return f"ingest:turn:{int(document_id)}"


@contextlib.contextmanager
def turn_claim(document_id):
    """Claim the document for one turn: yields 0 when claimed, else the seconds until another worker's live claim
    runs out. The claim is a redis-py Lock with a lease that a thread renews while the turn runs (a worker killed
    mid-turn lets go within TURN_LEASE_SECONDS); renewing and releasing check the claim's token atomically, so a
    turn whose lease ran out never extends or deletes another worker's claim."""
    import redis
    from redis.exceptions import LockError

    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=3)
    # thread_local=False: the renewing thread must see the token the turn's thread acquired
    claim = client.lock(_claim_key(document_id), timeout=TURN_LEASE_SECONDS, thread_local=False)
    if not claim.acquire(blocking=False):
        wait = client.ttl(claim.name)
        client.close()
        yield max(1, min(TURN_LEASE_SECONDS, wait + 1))
        return
    done = threading.Event()

    def renew():
        while not done.wait(TURN_LEASE_SECONDS / 3):
            try:
                claim.reacquire()
            except LockError:
                log.warning("document %s: the claim was lost (its lease ran out); another turn may start",
                            document_id)
                return
            except redis.RedisError:
                log.warning("could not renew the claim on document %s", document_id, exc_info=True)

    renewer = threading.Thread(target=renew, name=f"ingest-claim-{document_id}", daemon=True)
    renewer.start()
    try:
        yield 0
    finally:
        done.set()
        renewer.join(5)
        try:
            claim.release()
        except LockError:  # the lease ran out (and another worker may hold the document now): nothing to free
            log.warning("document %s: the claim had run out before the turn ended", document_id)
        finally:
            client.close()


def enqueue_ingestion(document_id):
    """Queue the ingestion of a document once the current transaction has committed (its first turn)."""
    from courses.models import Document

    Document.objects.filter(pk=document_id).update(queued_at=timezone.now())
    transaction.on_commit(lambda: ingest_document.apply_async((document_id,), priority=FIRST_TURN))


def queue_positions(documents):
    """{document id: documents ahead of it} for queued documents not started yet: the documents of every course
    that are being indexed now or were queued before it (each gets a turn first)."""
    from courses.models import Document

    waiting = [d for d in documents if d.status == Document.QUEUED and d.queued_at]
    if not waiting:
        return {}
    unfinished = list(Document.objects.unfinished().values_list("pk", "status", "queued_at"))
    started = sum(1 for _, status, _ in unfinished if status != Document.QUEUED)
    return {d.pk: started + sum(1 for pk, status, queued in unfinished
                                if status == Document.QUEUED and queued and queued < d.queued_at and pk != d.pk)
            for d in waiting}


def resume_interrupted():
    """Queue again every document not yet indexed: half-indexed by a killed worker, or queued while the
    broker lost its message (Redis restarted without its dump). A document that is also still in the queue or
    being indexed by another worker is not indexed twice: one turn at a time per document (turn_claim), and a
    ready one is "unchanged"; returns their ids."""
    from courses.models import Document

    unfinished = [Document.QUEUED, Document.PARSING, Document.EMBEDDING]
    ids = list(Document.objects.filter(status__in=unfinished).values_list("pk", flat=True))
    for document_id in ids:
        ingest_document.apply_async((document_id,), priority=FIRST_TURN)
    if ids:
        log.info("resuming the ingestion of documents %s", ids)
    return ids


@worker_ready.connect
def _resume_on_start(sender=None, **kwargs):
    """A worker that consumes the ingest queue picks up what a killed worker left unfinished."""
    queues = {q.name for q in getattr(getattr(sender, "task_consumer", None), "queues", [])} if sender else set()
    if queues and "ingest" not in queues:
        return
    try:
        resume_interrupted()
    except Exception:  # never keep a worker from starting
        log.exception("could not resume interrupted ingestions")


@worker_process_init.connect  # prefork: in each child process
@worker_ready.connect  # threads pool (the chat worker): the tasks run in this process
def _preload_embedder(**kwargs):
    """Load the embedding model (and the synonym list) in the background as each worker process starts, so the
    first question or document after a restart does not wait seconds for it (get_embedder's lock makes an early one wait once)."""

    def load():
        from courses.embeddings import get_embedder
        from courses.synonyms import available

        try:
            get_embedder()
            available()  # reads the synonym list once (about 2 s)
        except Exception:  # the task that needs it reports the error
            log.exception("could not preload the embedding model or the synonym list")
        freeze_startup_objects("worker")

    threading.Thread(target=load, name="preload-embedder", daemon=True).start()


# the name it had when config/ ran it: beat's schedule (config.periodic.JOBS) and earlier releases' messages use it
@shared_task(name="config.tasks.purge_inactive_courses", **DAILY)
@recorded("purge_inactive_courses")
def purge_inactive_courses():
    """Delete courses nobody used for PURGE_INACTIVE_COURSES_DAYS days (0, the default: only count them); daily."""
    from courses.privacy import delete_course, inactive_courses

    days = settings.PURGE_INACTIVE_COURSES_DAYS
    if days <= 0:
        return {"courses": 0, "off": True}
    courses = inactive_courses(days)
    for course in courses:
        delete_course(course)
    return {"courses": len(courses)}
