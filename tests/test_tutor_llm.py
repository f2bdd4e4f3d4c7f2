"""Against the real embedded inference server: llama.cpp (llama-cpp-python) with the packaged SmolLM2 model."""

import subprocess
import sys
import time

import httpx
import pytest

from deploy.stack import ROOT, free_port, smollm2_path, stop_process, wait_for_port
from tests.support import INIT_TEXT, make_course, make_member, point_tutor_at
from tutor.chat import conversations
from tutor.chat.models import Citation, Message
from tutor.inference.client import DONE, Endpoint, InferenceClient, parse_sse_line

pytestmark = pytest.mark.llm


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory):
    """llama-cpp-python's OpenAI-compatible server with SmolLM2 on a free loopback port; yields its /v1 URL.

    Started through deploy/llama_server.py, which turns off llama.cpp's weight repacking (it segfaults here).
    """
    port = free_port()
    log_path = tmp_path_factory.mktemp("llama") / "llama.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "deploy.llama_server", "--model", str(smollm2_path()), "--model_alias", "smollm2",
             "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--n_threads", "2",
             "--chat_format", "chatml", "--verbose", "False"],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_port("127.0.0.1", port, "llama.cpp server", process, timeout=120)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop_process(process)


def test_streams_and_follows_a_json_schema_on_smollm2(llama_server):
    """Streaming and the llama-cpp-python JSON form ({"type": "json_object", "schema": …}) on the real server."""
    client = InferenceClient(endpoints=[Endpoint(url=llama_server)], retries=0, timeout=120, context_tokens=4096)
    pieces = list(client.stream_chat([{"role": "user", "content": "Say hello."}], max_tokens=16, temperature=0))
    assert len(pieces) >= 2 and "".join(pieces).strip()
    schema = {"type": "object", "properties": {"pid": {"type": "integer"}}, "required": ["pid"]}
    data, _cut_off = client.chat_json([{"role": "user", "content": "Which PID has init? Answer as JSON."}], schema,
                                      max_tokens=24, temperature=0)
    assert isinstance(data["pid"], int)
    assert httpx.get(llama_server + "/models", timeout=10).json()["data"][0]["id"] == "smollm2"


def test_the_embedded_server_queues_requests_and_never_interrupts_an_answer(llama_server):
    """llama-cpp-python's default ends a streaming answer when any other request arrives. The embedded server
    (deploy/llama_server.py) queues them: two answers asked at once both end with a finish reason while
    readiness and token counts are asked in between, and those answer at once (no waiting for the model)."""
    import threading

    results = {}

    def ask(name):  # straight to the server (the tutor's own queue would keep the two apart)
        body = {"model": "smollm2", "stream": True, "max_tokens": 40, "temperature": 0,
                "messages": [{"role": "user", "content": f"Tell me a story about {name}."}]}
        text, finish = [], None
        with httpx.stream("POST", llama_server + "/chat/completions", json=body, timeout=240) as response:
            for line in response.iter_lines():
                parsed = parse_sse_line(line)
                if parsed is DONE:
                    break
                text.append(parsed[0])
                finish = parsed[1] or finish
        results[name] = ("".join(text), finish)

    threads = [threading.Thread(target=ask, args=(name,)) for name in ("Anna", "Ben")]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    root = llama_server[:-3]
    quick = []
    for _ in range(3):
        started = time.monotonic()
        assert httpx.get(root + "/health", timeout=10).json() == {"status": "ok"}
        assert httpx.post(root + "/extras/tokenize/count", json={"input": "Hallo Welt"}, timeout=10).json()["count"] > 0
        quick.append(time.monotonic() - started)
        time.sleep(0.3)
    for thread in threads:
        thread.join(timeout=240)
    assert set(results) == {"Anna", "Ben"}
    for text, finish in results.values():
        assert text.strip() and finish in ("stop", "length")
    print(f"health + token count while answering: {', '.join(f'{q * 1000:.0f} ms' for q in quick)}")


def test_the_server_s_own_tokenizer_counts_the_prompt(llama_server):
    """Near the context window the tutor counts with the model's tokenizer: llama-cpp-python's
    /extras/tokenize/count (after /tokenize, vLLM's and llama-server's route, was not found there)."""
    from tutor.inference import client as inference

    client = InferenceClient(endpoints=[Endpoint(url=llama_server)], retries=0, timeout=120, context_tokens=4096)
    text = "Der Init-Prozess hat die Prozessnummer 1. " * 20
    messages = [{"role": "user", "content": text}]
    counted = client.count_message_tokens_exactly(messages)
    assert inference._tokenize_routes[llama_server[:-3]][0] == "/extras/tokenize/count"
    reply = httpx.post(llama_server + "/chat/completions", timeout=120, json={
        "model": "smollm2", "messages": messages, "max_tokens": 1, "temperature": 0}).json()
    prompt_tokens = reply["usage"]["prompt_tokens"]  # the content plus the chat template's tokens
    assert counted - 4 < prompt_tokens <= counted + 12
    assert abs(counted - inference.count_message_tokens(messages)) > 5  # not the estimate


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_chat_answer_from_smollm2_through_the_worker(celery_worker, llama_server):
    """The whole chat path with the real model: grounded prompt, streamed answer saved with its sources."""
    course = make_course(("systemstart.md", INIT_TEXT))
    user, _ = make_member(course)
    point_tutor_at(course, llama_server, temperature=0, sources=1, timeout_seconds=120)
    _, answer = conversations.ask(course, user, "Welche Prozessnummer hat der Init-Prozess?")
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        answer.refresh_from_db()
        if answer.finished:
            break
        time.sleep(0.5)
    assert answer.status == Message.DONE, (answer.status, answer.error)
    assert answer.text.strip()
    assert Citation.objects.filter(message=answer).count() == 1


@pytest.mark.django_db
def test_smollm2_answers_what_the_texts_hold_and_never_sees_an_off_topic_question(llama_server, settings, tmp_path):
    """The embedded model's defaults (quote check and rewriting off for CHAT_WEAK_MODELS): the retrieval evidence
    alone decides; an off-topic question is declined without a request to the model, a covered one answered."""
    from tutor.chat.answering import Collector, respond
    from tutor.chat.checks import ask
    from tutor.models import TutorConfig

    settings.EMBEDDING_MODEL, settings.MEDIA_ROOT = "static", tmp_path / "media"
    course = make_course(("systemstart.md", INIT_TEXT))
    config = point_tutor_at(course, llama_server, temperature=0, sources=1, timeout_seconds=120)
    assert not config.checks_quotes and not config.rewrites_queries
    off_topic = ask(course, "Wie backe ich einen Käsekuchen ohne Boden?", ["Quark"])
    covered = ask(course, "Welche Prozessnummer hat der Init-Prozess?", ["PID 1"])
    assert off_topic.declined and not off_topic.in_sources
    assert covered.answered and covered.answer.strip() and covered.in_sources

    config.quote_check, config.query_rewrite = TutorConfig.ON, TutorConfig.ON  # a lecturer turns both on
    settings.CHAT_REWRITE_SECONDS = 120
    outcome = respond(course, config, "Welche Nummer hat der erste Prozess?", [], Collector())
    assert not outcome.error and outcome.evidence["quote_check"] is True
    assert outcome.evidence["rewritten"] is True  # SmolLM2 gave the rewrite JSON (llama-cpp-python's schema form)
    assert outcome.declined or outcome.evidence["grounded"] in (True, False)  # checked either way
