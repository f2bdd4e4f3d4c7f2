"""Faults across hosts: two workers on a queue under different node names, and the one running the task is killed
with SIGKILL (kill -9: a lost host, the OOM killer) in the middle of an ingestion, a question generation and a
chat answer. The other worker, still running, gets the task back (config/workers.py: live workers re-stamp the
tasks they hold, so a dead worker's come back after CELERY_VISIBILITY_TIMEOUT, here 8 s); the work completes once,
nothing is lost, nothing is doubled.

These workers use a broker database of their own (the session's worker never sees their tasks) and the test
PostgreSQL and Redis for everything else.
"""

import hashlib
import json
import os
import re
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.conf import settings as django_settings

from courses.documents import add_document
from courses.models import Chunk, Course, Document, Section
from tests.stub_llm import StubLLM
from tests.support import (
    CORPUS_DE,
    INIT_TEXT,
    celery_app_for,
    make_course,
    make_member,
    point_tutor_at,
    start_worker,
    stop_worker,
    wait_for,
)
from tutor.chat.models import Conversation, Message
from tutor.models import TutorConfig
from tutor.questions.models import Question, QuestionSet

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

VISIBILITY = 8  # a stamp every 2 s: 4 s (a stamp a second) once handed a live worker's task out again on a busy
# 2-core machine (a CI run beside a benchmark's ingestion)
GOOD = [{"stem": "Welche Prozessnummer hat der Init-Prozess?", "options": ["0", "1", "42"], "answer": 1,
         "explanation": "Der Init-Prozess hat die PID 1.", "source": 1},
        {"stem": "Wer startet den Init-Prozess?", "options": ["Der Kernel", "APT"], "answer": 0,
         "explanation": "Der Kernel startet ihn.", "source": 1}]


@pytest.fixture
def cluster(worker_env, settings, tmp_path):
    """Two workers per queue of a test: start(queues, pool) gives both; kill_the_busy_one() kills (-9, whole
    process group) whichever is running a task now and returns it; send(task, *args) queues a task."""
    broker = django_settings.REDIS_URL.rsplit("/", 1)[0] + "/13"
    app = celery_app_for(broker)
    app.connection_for_write().default_channel.client.flushdb()
    settings.MEDIA_ROOT = tmp_path / "media"
    env = dict(worker_env, CELERY_BROKER_URL=broker, CELERY_VISIBILITY_TIMEOUT=str(VISIBILITY),
               EMBEDDING_MODEL="static", TUTOR_MEDIA_ROOT=str(settings.MEDIA_ROOT))

    class Cluster:
        workers = []

        def start(self, queues, pool="prefork", **extra_env):
            self.workers = [start_worker(dict(env, **extra_env), tmp_path / f"{name}.log", queues, pool=pool,
                                         name=f"{queues.split(',')[0]}-{name}", concurrency=2 if pool == "threads"
                                         else 1) for name in ("a", "b")]
            return self.workers

        def send(self, task, *args, queue, priority=None):
            app.send_task(task, args=args, queue=queue, priority=priority)

        def busy(self):
            # read from the workers' own logs (a task received and not yet ended), at once: asking them by a
            # control message (inspect().active()) took over 10 s once while they were busy, long enough for a
            # fast ingestion to finish before the kill
            for worker in self.workers:
                text = worker.log_path.read_text()
                if text.count("] received") > len(re.findall(r"\] (?:succeeded in|raised|retry:)", text)):
                    return worker
            return None

        def kill_the_busy_one(self):
            busy = wait_for(self.busy, 60, "a worker running the task")
            os.killpg(busy.pid, signal.SIGKILL)
            busy.wait(10)
            survivor = next(w for w in self.workers if w is not busy)
            return busy, survivor

        def logs(self):
            return "\n".join(w.log_path.read_text()[-3000:] for w in self.workers)

    made = Cluster()
    yield made
    for worker in made.workers:
        stop_worker(worker)
    app.connection_for_write().default_channel.client.flushdb()


class _GatedEmbeddings(BaseHTTPRequestHandler):
    """An OpenAI-compatible /v1/embeddings stand-in on loopback that holds every batch of passages until the test
    opens its gate: the ingestion is then known to stand in its embedding step, parsed and nothing stored, when its
    worker is killed (waiting for a page count instead raced a fast ingestion, which once finished first)."""

    def do_POST(self):  # noqa: N802
        texts = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["input"]
        if len(texts) > 1:  # a batch of passages, not the one-text dimension probe
            self.server.held.set()
            self.server.gate.wait(120)
        data = [{"index": i, "embedding": list(hashlib.sha256(t.encode()).digest()[:8])} for i, t in enumerate(texts)]
        payload = json.dumps({"data": data}).encode()
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:  # the killed worker's request
            pass

    def log_message(self, *args):
        pass


def test_an_ingestion_whose_worker_is_killed_completes_on_the_other_worker_once(cluster):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _GatedEmbeddings)
    server.held, server.gate = threading.Event(), threading.Event()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        course = Course.objects.create(title="Debian")
        document = add_document(course, "debian-reference.de.pdf",
                                (CORPUS_DE / "debian-reference.de.pdf").read_bytes(), enqueue=False)
        cluster.start("ingest", EMBEDDING_MODEL="server:gated",
                      EMBEDDING_URL=f"http://127.0.0.1:{server.server_address[1]}/v1")
        cluster.send("courses.tasks.ingest_document", document.pk, queue="ingest", priority=0)
        assert server.held.wait(180), f"the ingestion's first batch of passages:\n{cluster.logs()}"
        killed, survivor = cluster.kill_the_busy_one()
        assert Document.objects.get(pk=document.pk).status == Document.EMBEDDING
        assert not Chunk.objects.filter(document=document).exists()  # nothing half-written
        server.gate.set()

        wait_for(lambda: Document.objects.filter(pk=document.pk, status=Document.READY).exists(), 300,
                 f"the ingestion on the other worker:\n{cluster.logs()}")
    finally:
        server.gate.set()
        server.shutdown()
    document.refresh_from_db()
    chunks = Chunk.objects.filter(document=document)
    assert chunks.count() == document.chunks_total == document.chunks_done > 500
    assert len(set(chunks.values_list("ordinal", flat=True))) == chunks.count()
    assert "courses.tasks.ingest_document" in survivor.log_path.read_text()


def test_a_generation_whose_worker_is_killed_completes_on_the_other_worker_once(cluster, tmp_path):
    """The model takes 40 s for the questions, far longer than the visibility timeout (8 s): while its worker
    lives, the task is not handed to the other worker; once it is killed, it is."""
    course = make_course(("systemstart.md", INIT_TEXT))
    section = Section.objects.get(document__course=course, title="Der Init-Prozess")
    with StubLLM(reply=json.dumps({"questions": GOOD}), complete_seconds=40) as stub:
        point_tutor_at(course, stub.url, question_test_student=TutorConfig.CHECK_OFF,  # one model request a run
                       question_method=TutorConfig.WHOLE_PASSAGE)
        question_set = QuestionSet.objects.create(course=course, title="Init", requested=2,
                                                  generation=QuestionSet.QUEUED)
        question_set.sections.set([section])
        cluster.start("generate")
        cluster.send("tutor.tasks.generate_questions", question_set.pk, queue="generate")
        wait_for(lambda: stub.active, 60, "the generation's request at the model")
        time.sleep(3 * VISIBILITY + 1)  # three visibility timeouts and more while the live worker waits for the model
        assert len(stub.requests) == 1  # not handed out a second time
        cluster.kill_the_busy_one()
        assert not Question.objects.filter(question_set=question_set).exists()

        wait_for(lambda: QuestionSet.objects.filter(pk=question_set.pk, generation=QuestionSet.DONE).exists(), 180,
                 f"the generation on the other worker:\n{cluster.logs()}")
        requests = len(stub.requests)
    assert Question.objects.filter(question_set=question_set).count() == 2  # stored once
    assert requests == 2  # the killed worker's request and the other worker's


def test_an_answer_whose_worker_is_killed_is_answered_again_once_by_the_other_worker(cluster):
    """The killed worker held the model server's only slot (INFERENCE_SLOTS=1): the other worker gets it when its
    lease ends. A reader of the answer's stream sees the answer start over and end once."""
    import redis

    from tutor.chat import stream
    from tutor.inference import capacity

    course = make_course(("systemstart.md", INIT_TEXT))
    user, _token = make_member(course)
    reply = " ".join(f"wort{i}" for i in range(30)) + " [1]"
    with StubLLM(reply=reply, token_delay=0.25) as stub:
        point_tutor_at(course, stub.url)
        capacity._redis().delete(*capacity._keys(stub.url))
        conversation = Conversation.objects.create(course=course, user=user)
        _question, answer = Message.objects.bulk_create([
            Message(conversation=conversation, role=Message.USER, text="Welche Prozessnummer hat der Init-Prozess?"),
            Message(conversation=conversation, role=Message.ASSISTANT, status=Message.PENDING)])
        events = []
        listener = redis.Redis.from_url(django_settings.REDIS_URL).pubsub()
        listener.subscribe(stream.channel(answer.pk))

        def listen():
            for item in listener.listen():
                if item["type"] == "message":
                    events.append(json.loads(item["data"])["t"])
                    if events[-1] == "end":
                        return

        reader = threading.Thread(target=listen, daemon=True)
        reader.start()
        cluster.start("chat", pool="threads", INFERENCE_SLOTS="1")
        cluster.send("tutor.tasks.chat_answer", answer.pk, queue="chat")
        wait_for(lambda: Message.objects.filter(pk=answer.pk, status=Message.STREAMING).exists(), 60,
                 "the answer to stream")
        time.sleep(1)  # a few more pieces
        cluster.kill_the_busy_one()
        assert capacity.queue_length(stub.url)[0] == 1  # the dead worker's slot, until its lease ends

        done = wait_for(lambda: Message.objects.filter(pk=answer.pk, status__in=[Message.DONE, Message.FAILED])
                        .first(), 180, f"the answer on the other worker:\n{cluster.logs()}")
        reader.join(30)
        listener.close()
        capacity._redis().delete(*capacity._keys(stub.url))
    assert done.status == Message.DONE and done.text == reply  # the whole answer, once (not the piece + the whole)
    assert done.citations.filter(number=1).count() == 1
    assert events.count("reset") == 1 and events.count("end") == 1 and events[-1] == "end"
    assert "".join(events).count("delta") > 30  # the killed worker's pieces, then the whole answer again
    assert len(stub.requests) == 2
