"""Several students ask at the same moment, through the real stack and the real embedded llama.cpp server.

Web server (uvicorn), a chat worker on a threads pool as deployed (beside the session's prefork worker),
Redis, PostgreSQL, and SmolLM2 behind deploy/llama_server.py. Every answer must complete (none interrupted,
none failed), the waiting ones are told how many requests are ahead of them, and readiness stays green while
the one model slot is busy. The numbers for 20 students come from bench/bench_concurrent_chat.py.
"""

import asyncio
import subprocess
import sys
import time

import httpx
import pytest

from deploy.stack import ROOT, stop_process
from tests.support import INIT_TEXT, ask_as_the_page, make_course, make_member, point_tutor_at
from tests.test_tutor_llm import llama_server  # noqa: F401 (the session's real model server)
from tutor.chat.models import Message
from tutor.inference import capacity

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker, pytest.mark.llm, pytest.mark.slow]

STUDENTS = 4
QUESTIONS = ["Welche Prozessnummer hat der Init-Prozess?", "Was startet der Kernel zuerst?",
             "Wie heißt der erste Prozess beim Systemstart?", "Welche Rolle hat init beim Start?"]


@pytest.fixture
def chat_worker(worker_env, tmp_path, settings):
    """A chat worker on a threads pool, as the run command starts it (answers wait for the model in threads)."""
    log = open(tmp_path / "chat-worker.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "chat", "-n", "concurrency-chat@%h",
         "--pool", "threads", "--concurrency", "8", "--loglevel", "INFO", "--without-gossip", "--without-mingle"],
        env=worker_env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)
    from config.celery import app

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any("concurrency-chat" in name for reply in
                                                  (app.control.ping(timeout=0.5) or []) for name in reply):
        pass
    yield process
    stop_process(process, grace=20)
    log.close()


async def ask(http, web, course_id, token, text):
    """One student's question as the chat page asks it; what the page was shown, with times."""
    started = time.monotonic()
    seen = {"queue": [], "first": None, "final": None}

    def on_event(event, data):
        if event == "queue":
            seen["queue"].append(data["ahead"])
        elif event in ("snapshot", "delta") and data.get("text") and seen["first"] is None:
            seen["first"] = time.monotonic() - started
        elif event == "final":
            seen["final"] = data

    await ask_as_the_page(http, web, course_id, token, text, on_event)
    seen["total"] = time.monotonic() - started
    return seen


async def readiness_while(done):
    """The readiness check of the model server (config.health), every half second until done; its results."""
    from config.health import run_checks

    results = []
    while not done.is_set():
        results.append((await asyncio.to_thread(run_checks, ["inference"]))["inference"])
        await asyncio.sleep(0.5)
    return results


def test_students_asking_at_once_all_get_complete_answers_and_are_told_they_wait(
        celery_worker, chat_worker, web_server, llama_server, settings):  # noqa: F811
    course = make_course(("systemstart.md", INIT_TEXT))
    members = [make_member(course) for _ in range(STUDENTS)]
    point_tutor_at(course, llama_server, temperature=0, sources=1, timeout_seconds=300)
    settings.INFERENCE_URLS = [llama_server]  # what readiness checks here
    capacity.set_slots(llama_server, 1)  # as the embedded server has (every worker process reads it from Redis)

    async def run():
        done = asyncio.Event()
        limits = httpx.Limits(max_connections=STUDENTS + 4)
        async with httpx.AsyncClient(timeout=httpx.Timeout(600, connect=30), limits=limits) as http:
            health = asyncio.create_task(readiness_while(done))
            results = await asyncio.gather(*[ask(http, web_server, course.pk, token, QUESTIONS[i % len(QUESTIONS)])
                                             for i, (_, token) in enumerate(members)])
            done.set()
            return results, await health

    try:
        results, codes = asyncio.run(run())
    finally:
        capacity.set_slots(llama_server, None)
    for seen in results:
        final = seen["final"]
        assert final is not None and final["status"] == "done", (final or {}).get("error_code")
        assert final["html"].strip()
    answers = Message.objects.filter(conversation__course=course, role=Message.ASSISTANT)
    assert answers.count() == STUDENTS
    assert not answers.exclude(status=Message.DONE).exists()
    told = [max(seen["queue"]) for seen in results if seen["queue"]]
    assert len(told) >= STUDENTS - 2, results  # one answered at once; the others (but a race) heard they wait
    assert codes and all(check["ok"] for check in codes), codes
    waits = sorted(seen["first"] for seen in results)
    print(f"{STUDENTS} students at once: first piece after {', '.join(f'{w:.1f}' for w in waits)} s; "
          f"told ahead: {told}; readiness checks {len(codes)}, all ok, slowest {max(c['ms'] for c in codes):.0f} ms")
