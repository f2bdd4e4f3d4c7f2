"""The model server's slots, shared through the real Redis: turns in order, chat before batch work, batch work
limited to its share, and nothing stuck when a holder or a waiter dies; at a stub server that really has only
K slots, a question goes to the model at once while generation work holds batch's share."""

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from tests.stub_llm import StubLLM
from tests.support import ROOT, wait_for
from tutor.inference import capacity
from tutor.inference.client import BATCH, Endpoint, InferenceClient

URL = "http://gpu.test:8000/v1"


@pytest.fixture(autouse=True)
def one_server(settings):
    """A fresh slot pool for a server of two slots, at most one for batch work."""
    settings.INFERENCE_SLOTS, settings.INFERENCE_BATCH_SLOTS = 2, 1
    capacity._redis().delete(*capacity._keys(URL))
    yield
    capacity._redis().delete(*capacity._keys(URL))


def hold(kind, events, name, release, **options):
    """Take a slot, note when, keep it until release is set."""
    with capacity.slot(URL, kind, on_wait=lambda ahead: events.append((name, "waits", ahead)), **options):
        events.append((name, "holds", None))
        release.wait(20)


def start(*args, **options):
    thread = threading.Thread(target=hold, args=args, kwargs=options, daemon=True)
    thread.start()
    return thread


def wait_until(condition, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached")


def holders(events):
    return [name for name, what, _ in events if what == "holds"]


def test_chat_goes_before_waiting_batch_work_and_batch_keeps_to_its_share():
    events, first, second = [], threading.Event(), threading.Event()
    start(capacity.BATCH, events, "batch-1", first)
    wait_until(lambda: holders(events) == ["batch-1"])
    start(capacity.BATCH, events, "batch-2", second)  # batch may hold only one of the two slots: it waits
    time.sleep(0.3)
    assert holders(events) == ["batch-1"] and ("batch-2", "waits", 1) in events
    start(capacity.CHAT, events, "chat-1", second)  # the free slot is chat's at once
    wait_until(lambda: "chat-1" in holders(events))
    start(capacity.CHAT, events, "chat-2", second)  # both slots taken: waits, ahead of batch-2
    wait_until(lambda: any(e[0] == "chat-2" and e[1] == "waits" for e in events))
    first.set()  # batch-1 ends: chat-2 (not batch-2, which waited longer) takes the slot
    wait_until(lambda: "chat-2" in holders(events))
    assert "batch-2" not in holders(events)
    second.set()
    wait_until(lambda: "batch-2" in holders(events))
    assert holders(events) == ["batch-1", "chat-1", "chat-2", "batch-2"]


def test_a_waiter_hears_how_many_are_ahead_and_gives_up_after_the_allowed_wait():
    events, release = [], threading.Event()
    start(capacity.CHAT, events, "a", release)
    start(capacity.CHAT, events, "b", release)
    wait_until(lambda: len(holders(events)) == 2)
    with pytest.raises(capacity.QueueTimeout):
        with capacity.slot(URL, capacity.CHAT, max_wait=0.5,
                           on_wait=lambda ahead: events.append(("c", "waits", ahead))):
            pass
    assert ("c", "waits", 1) in events
    release.set()
    assert capacity._redis().zcard(capacity._keys(URL)[2]) == 0  # the one that gave up left the queue


def test_a_dead_holder_frees_its_slot_when_its_lease_ends():
    """A worker killed while it holds a slot never releases it: its lease runs out instead."""
    keys = capacity._keys(URL)
    now = int(time.time() * 1000)
    capacity._redis().zadd(keys[0], {"dead-1": now + 300, "dead-2": now + 300})
    started = time.monotonic()
    with capacity.slot(URL, capacity.CHAT, max_wait=5):
        waited = time.monotonic() - started
    assert 0.2 < waited < 5


def test_a_dead_waiter_does_not_block_the_queue(monkeypatch):
    """A waiter that stopped asking (killed) is dropped from the queue after STALE_WAITER_MS."""
    monkeypatch.setattr(capacity, "STALE_WAITER_MS", 200)
    keys = capacity._keys(URL)
    now = int(time.time() * 1000)
    capacity._redis().zadd(keys[2], {"ghost": 0})  # first in line
    capacity._redis().zadd(keys[3], {"ghost": now - 1000})  # last heard of a second ago
    capacity._redis().zadd(keys[0], {"holder": now + 60_000, "holder-2": now + 60_000})
    events, release = [], threading.Event()
    thread = start(capacity.CHAT, events, "live", release)
    time.sleep(0.3)
    capacity._redis().zrem(keys[0], "holder")  # one slot frees: the live waiter, not the ghost, gets it
    wait_until(lambda: holders(events) == ["live"])
    release.set()
    thread.join(5)
    assert capacity._redis().zscore(keys[2], "ghost") is None


def test_slots_by_server_unless_configured(settings):
    """The embedded llama.cpp server answers one request at a time; other servers (vLLM, Ollama) get 16 by
    default, batch work all but one of them; INFERENCE_SLOTS and INFERENCE_BATCH_SLOTS set them for all."""
    settings.INFERENCE_SLOTS, settings.INFERENCE_BATCH_SLOTS = 0, 0
    assert capacity.slots_for("http://127.0.0.1:8089/v1/") == (1, 1)
    assert capacity.slots_for("http://gpu.uni.example:8000/v1") == (16, 15)
    settings.INFERENCE_SLOTS, settings.INFERENCE_BATCH_SLOTS = 4, 9
    assert capacity.slots_for("http://gpu.uni.example:8000/v1") == (4, 4)


def test_an_admin_sets_a_server_s_slots_for_every_process_at_run_time(settings):
    """inference_slots URL N: every worker uses N at once (the count lives in Redis); --clear: the settings again."""
    from django.core.management import call_command

    settings.INFERENCE_SLOTS, settings.INFERENCE_BATCH_SLOTS = 0, 0  # by server: 16 here
    call_command("inference_slots", URL, "1")
    assert capacity.current_slots(URL) == (1, 1)
    events, release = [], threading.Event()
    start(capacity.CHAT, events, "first", release)
    wait_until(lambda: holders(events) == ["first"])
    with pytest.raises(capacity.QueueTimeout):  # one slot: the second waits
        with capacity.slot(URL, capacity.CHAT, max_wait=0.3):
            pass
    release.set()
    call_command("inference_slots", URL, clear=True)
    assert capacity.current_slots(URL) == (16, 15)


HOLDER = """
import sys, time, django
django.setup()
from tutor.inference import capacity
capacity.HOLD_LEASE_MS = 1500
with capacity.slot(sys.argv[1], capacity.BATCH):
    print("held", flush=True)
    time.sleep(600)
"""


def test_a_killed_holder_s_slot_is_free_once_its_lease_ends_and_a_live_holder_keeps_its_slot(settings):
    """A worker process killed with SIGKILL while its model request holds a slot frees it when the lease runs out
    (here 1.5 s); while it lived, its lease was renewed past that."""
    settings.INFERENCE_SLOTS = 1
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="config.settings", INFERENCE_SLOTS="1")
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, URL], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        time.sleep(3)  # twice the lease: only the renewing thread keeps the slot
        assert capacity.queue_length(URL)[0] == 1
        with pytest.raises(capacity.QueueTimeout):
            with capacity.slot(URL, capacity.CHAT, max_wait=0.3):
                pass
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
        with capacity.slot(URL, capacity.CHAT, max_wait=60):  # the dead holder's lease runs out
            assert capacity.queue_length(URL)[0] == 1
    finally:
        holder.kill()
        holder.wait(10)


def test_at_a_server_of_k_slots_a_question_goes_to_the_model_at_once_while_generation_waits(settings):
    """A stub server that generates at most 2 answers at once, as vLLM with a full batch: 4 generation requests
    (batch work may hold 1 of the 2 slots) and then a student's question. The question is answered next to one
    generation request, never behind the others: it never waited at the server or in the tutor's queue, and
    the server never had more than its 2 slots' worth of work."""
    settings.INFERENCE_SLOTS, settings.INFERENCE_BATCH_SLOTS = 2, 1
    with StubLLM(reply="ein zwei drei", slots=2, first_token_delay=0.5, complete_seconds=1.0) as stub:
        client = InferenceClient(endpoints=[Endpoint(url=stub.url)])
        capacity._redis().delete(*capacity._keys(stub.url))
        done = []

        def generate(i):
            done.append(client.complete([{"role": "user", "content": f"generation {i}"}], kind=BATCH))

        workers = [threading.Thread(target=generate, args=(i,), daemon=True) for i in range(4)]
        for worker in workers:
            worker.start()
        wait_for(lambda: stub.active == 1, 30, "the first generation request at the server")
        waits = []
        answer = "".join(client.stream_chat([{"role": "user", "content": "question"}], on_wait=waits.append))
        for worker in workers:
            worker.join(60)
        capacity._redis().delete(*capacity._keys(stub.url))

    assert answer == "ein zwei drei" and len(done) == 4
    labels = [label for label, _active, _waited in stub.served]
    question = labels.index("question")
    assert question == 1  # after the first generation request, ahead of the three others
    assert stub.served[question][1:] == (2, False)  # generated beside one generation request, no wait at the server
    assert waits == []  # and no wait in the tutor's queue
    assert stub.max_active == 2 and all(active == 1 for label, active, _ in stub.served if label != "question")
