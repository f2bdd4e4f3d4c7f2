"""The answerability decision through the real stack: the web server (uvicorn), the Celery worker, Redis, PostgreSQL
and a loopback stub model (tests/stub_llm.py) that answers as told: the decline without asking the model, the quote
check (a real quote kept, an invented one declined or marked), query rewriting, follow-ups and the short question's
language; and evaluate_answers and the lecturer's test questions on the same pipeline."""

import json
import re

import pytest
from django.core.management import call_command

from tests.support import INIT_TEXT, make_member, point_tutor_at, session_headers, wait_for
from tests.test_tutor_chat import ask, ask_streaming, sse_events
from tutor.chat.models import Citation, Message, TestQuestion
from tutor.models import TutorConfig

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

COURSE_TEXTS = [("systemstart.md", INIT_TEXT)]  # for the course fixture (tests/support.py)
REAL_QUOTE = "Er hat die Prozessnummer 1 (PID 1)."


def quoting(answer, quote, number=1):
    """A stub reply that answers with a citation and quotes its evidence as the quote check asks."""
    return f"{answer} [{number}].\nQUOTES:\n[{number}] „{quote}“"


def test_a_question_the_texts_do_not_touch_is_declined_before_the_model_in_the_asker_s_language(
        celery_worker, web_server, stub_llm, course):
    _, token = make_member(course)
    point_tutor_at(course, stub_llm.url)
    final = sse_events(web_server + ask(web_server, course, token, "Wer hat die Relativitätstheorie entwickelt?")
                       ["stream_url"], headers=session_headers(token))[-1][1]
    assert final["declined"] is True and "I searched" not in final["html"] and "Durchsucht habe ich" in final["html"]
    answer = Message.objects.get(pk=final["id"])
    assert answer.evidence["retrieval"]["level"] == "none" and stub_llm.requests == []
    # too short to tell its language: the page's (English here: the test client sends no German locale)
    short = sse_events(web_server + ask(web_server, course, token, "Paris?")["stream_url"],
                       headers=session_headers(token))[-1][1]
    assert short["declined"] and "I searched" in short["html"]


def test_a_real_quote_keeps_the_answer_and_is_stored_with_its_source(celery_worker, web_server, stub_llm, course):
    _, token = make_member(course)
    point_tutor_at(course, stub_llm.url, quote_check=TutorConfig.ON)
    stub_llm.reply = quoting("Der Init-Prozess hat die PID 1", REAL_QUOTE)
    stub_llm.token_delay = 0.05  # the answer streams while the page listens (an instant one may arrive whole at the end)
    events = ask_streaming(web_server, course, token, "Welche Prozessnummer hat der Init-Prozess?")
    streamed = "".join(data["text"] for name, data in events if name in ("snapshot", "delta"))
    assert streamed == "Der Init-Prozess hat die PID 1 [1].\n"  # the quote block is never shown as text
    final = events[-1][1]
    assert final["declined"] is False and final["grounded"] is True
    system = stub_llm.requests[0]["body"]["messages"][0]["content"]
    assert "QUOTES:" in system
    citation = Citation.objects.get(message_id=final["id"], number=1)
    assert citation.cited and citation.quote == REAL_QUOTE.rstrip(".")
    assert final["citations"][0]["quote"] == citation.quote


def test_an_invented_quote_turns_a_strict_answer_into_the_decline(celery_worker, web_server, stub_llm, course):
    _, token = make_member(course)
    point_tutor_at(course, stub_llm.url, quote_check=TutorConfig.ON)
    stub_llm.reply = quoting("Der Init-Prozess hat die PID 7", "Der Init-Prozess hat immer die Prozessnummer 7.")
    stub_llm.token_delay = 0.05  # the answer streams while the page listens (an instant one may come as one snapshot)
    events = ask_streaming(web_server, course, token, "Welche Prozessnummer hat der Init-Prozess?")
    names = [name for name, _data in events]
    final = events[-1][1]
    assert final["declined"] is True and "PID 7" not in final["html"] and "systemstart" in final["html"]
    assert final["citations"] == []
    assert "snapshot" in names[names.index("delta"):]  # streamed, then replaced: the page's reset
    answer = Message.objects.get(pk=final["id"])
    assert answer.evidence["grounded"] is False and answer.evidence["quotes"][0]["found"] is False
    assert "PID 7" not in answer.text


def test_an_invented_quote_in_open_mode_keeps_the_answer_marked(celery_worker, web_server, stub_llm, course):
    _, token = make_member(course)
    point_tutor_at(course, stub_llm.url, quote_check=TutorConfig.ON, strictness=TutorConfig.OPEN)
    stub_llm.reply = quoting("Der Init-Prozess hat die PID 7", "Der Init-Prozess hat immer die Prozessnummer 7.")
    final = ask_streaming(web_server, course, token, "Welche Prozessnummer hat der Init-Prozess?")[-1][1]
    assert final["declined"] is False and final["grounded"] is False
    assert "PID 7" in final["html"] and "Quellen" in final["html"]  # the note, in the question's language


def test_open_strictness_answers_an_off_topic_question_as_general_knowledge(celery_worker, web_server, stub_llm,
                                                                            course):
    _, token = make_member(course)
    point_tutor_at(course, stub_llm.url, strictness=TutorConfig.OPEN)
    stub_llm.reply = "Allgemeinwissen: Albert Einstein."
    final = ask_streaming(web_server, course, token, "Wer hat die Relativitätstheorie entwickelt?")[-1][1]
    assert final["declined"] is False and final["citations"] == [] and "Einstein" in final["html"]
    assert "Allgemeinwissen" in stub_llm.requests[0]["body"]["messages"][0]["content"]
    assert "<course_texts>\n\n</course_texts>" in stub_llm.requests[0]["body"]["messages"][-1]["content"]


def rewriting_stub(rewrite, answer):
    """A stub that answers the rewrite request (a JSON schema) with rewrite and the chat request with answer."""
    def reply(body):
        return json.dumps(rewrite) if "response_format" in body else answer
    return reply


def test_a_paraphrased_question_is_found_through_the_model_s_rewording(celery_worker, web_server, stub_llm, course):
    """"Welche Nummer bekommt das allererste Programm?" shares no word with the text; the model's rewording does.
    The rewrite request goes first and carries the question as data; the answer's prompt then holds the passage."""
    _, token = make_member(course)
    point_tutor_at(course, stub_llm.url, query_rewrite=TutorConfig.ON)
    stub_llm.reply = rewriting_stub({"question": "Welche Prozessnummer hat der Init-Prozess?",
                                     "wordings": ["PID des ersten Prozesses beim Systemstart"],
                                     "passage": "Der Init-Prozess ist der erste Prozess und hat die PID 1."},
                                    "Es hat die PID 1 [1].")
    final = ask_streaming(web_server, course, token, "Welche Nummer bekommt das allererste Programm?")[-1][1]
    rewrite, answer = (r["body"] for r in stub_llm.requests)
    assert "response_format" in rewrite and "allererste Programm" in rewrite["messages"][-1]["content"]
    assert "Prozessnummer 1 (PID 1)" in answer["messages"][-1]["content"]
    assert final["declined"] is False and Message.objects.get(pk=final["id"]).evidence["rewritten"] is True


def test_a_follow_up_is_rewritten_with_the_previous_question_and_a_broken_rewrite_is_skipped(
        celery_worker, web_server, stub_llm, course):
    _, token = make_member(course)
    point_tutor_at(course, stub_llm.url, query_rewrite=TutorConfig.ON)
    stub_llm.reply = rewriting_stub({"question": "Wie installiert man Pakete mit apt?", "wordings": [],
                                     "passage": "Pakete installiert man mit apt install."}, "Mit apt install [1].")
    ask_streaming(web_server, course, token, "Was ist APT?")
    stub_llm.requests.clear()
    ask_streaming(web_server, course, token, "Und wie installiere ich damit etwas?")
    rewrite = stub_llm.requests[0]["body"]["messages"][-1]["content"]
    assert rewrite.index("Was ist APT?") < rewrite.index("Und wie installiere ich damit etwas?")
    stub_llm.requests.clear()
    stub_llm.reply = rewriting_stub("not an object", "Mit apt install [1].")  # the model's JSON is useless
    final = ask_streaming(web_server, course, token, "Wie installiert man Pakete mit apt?")[-1][1]
    assert final["status"] == "done" and not final["declined"] and "apt install" in final["html"]
    assert Message.objects.get(pk=final["id"]).evidence["rewritten"] is False


def test_evaluate_answers_runs_the_chat_pipeline_and_prints_its_last_line(stub_llm, tmp_path, capsys, settings):
    settings.EMBEDDING_MODEL = "static"
    settings.MEDIA_ROOT = tmp_path / "media"
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "systemstart.md").write_text(INIT_TEXT)
    qa, unanswerable = tmp_path / "qa.jsonl", tmp_path / "un.jsonl"
    qa.write_text('{"q": "Welche Prozessnummer hat der Init-Prozess?", "any": ["PID 1"]}\n'
                  '{"q": "Wo stehen die Paketquellen?", "any": ["/etc/apt/sources.list"]}\n')
    unanswerable.write_text('{"q": "Wie hoch ist der Eiffelturm in Paris?"}\n'
                            '{"q": "Wer schrieb den Roman Die Blechtrommel?"}\n')

    def reply(body):
        asked = body["messages"][-1]["content"]  # the passages and the question
        return "In /etc/apt/sources.list [1]." if "Paketquellen?" in asked else "Die PID 1 [1]."

    stub_llm.reply = reply
    call_command("evaluate_answers", docs=str(docs), qa=str(qa), unanswerable=str(unanswerable), url=stub_llm.url,
                 quote_check="off")
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == "answered_correct = 1.00; false_declines = 0.00; declined_unanswerable = 1.00"
    assert any(line.startswith("answerable qa.jsonl (2 questions") and "declined 0.00" in line for line in out)
    assert any(line.startswith("first visible text (answered questions, 2): p50") for line in out)
    assert len(stub_llm.requests) == 2  # the unanswerable ones never reached the model

    # quotes only: no model at all; an answer counts when its quotes hold an expected string
    settings.INFERENCE_URLS = []
    call_command("evaluate_answers", docs=str(docs), qa=str(qa), unanswerable=str(unanswerable),
                 answer_mode="quotes")
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0].startswith("no model asked; answers: quotes")
    assert out[-1] == "answered_correct = 1.00; false_declines = 0.00; declined_unanswerable = 1.00"
    assert any("its quotes contain it 1.00" in line for line in out)
    assert len(stub_llm.requests) == 2


def test_the_lecturer_s_test_questions_are_answered_by_the_worker(celery_worker, stub_llm, course, client):
    """"Check now" queues the test questions as batch work; the worker answers them through the chat pipeline and
    the settings page shows which were found and answered and which declined."""
    from django.urls import reverse

    from courses.models import Membership

    _, token = make_member(course, Membership.INSTRUCTOR)
    point_tutor_at(course, stub_llm.url)
    stub_llm.reply = "Der Init-Prozess hat die PID 1 [1]."
    TestQuestion.objects.create(course=course, question="Welche Prozessnummer hat der Init-Prozess?", expected="PID 1")
    TestQuestion.objects.create(course=course, question="Wie hoch ist der Eiffelturm?", expected="330 m")
    response = client.post(reverse("tutor:check_tests", args=[course.pk]), {}, headers=session_headers(token))
    assert response.status_code == 302
    wait_for(lambda: not TestQuestion.objects.filter(course=course, checked_at=None).exists(), timeout=90,
             what="the test questions to be checked")
    found, missing = TestQuestion.objects.filter(course=course).order_by("id")
    assert (found.found, found.answered, found.correct) == (True, True, True)
    assert (missing.found, missing.answered, missing.correct) == (False, False, None)
    page = client.get(reverse("tutor:settings", args=[course.pk]), headers=session_headers(token)).content.decode()
    rows = re.findall(r'<tr class="test-question">(.*?)</tr>', page, re.S)
    assert "declined" in rows[1] and "declined" not in rows[0]
    assert not Message.objects.filter(conversation__course=course).exists()  # no conversation, no usage counted
