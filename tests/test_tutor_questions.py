"""Question sets through the real stack: lecturer pages (Django test client), the Celery worker on the
generate queue, PostgreSQL, and the loopback stub inference server answering with deterministic JSON."""

import json
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from django.utils import timezone

from courses.models import Chunk, Membership, Section
from tests.support import INIT_TEXT, closed_port_url, make_member, page_data, point_tutor_at, wait_for
from tests.test_tutor_llm import llama_server  # noqa: F401  (the real llama.cpp server fixture)
from tutor.models import Attempt, Question, QuestionSet
from tutor.questions import generate
from tutor.retention import delete_user_data, export_user_data

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

GOOD = [
    {"stem": "Welche Prozessnummer hat der Init-Prozess?", "options": ["0", "1", "42", "100"], "answer": 1,
     "explanation": "Der Init-Prozess hat die PID 1.", "source": 1},
    {"stem": "Welches Init-System ist unter Debian voreingestellt?", "options": ["SysV", "systemd", "upstart"],
     "answer": 1, "explanation": "systemd ist voreingestellt.", "source": 1},
    {"stem": "Wer startet den Init-Prozess?", "options": ["Der Kernel", "Der Benutzer", "APT"], "answer": 0,
     "explanation": "Der Kernel startet ihn beim Systemstart.", "source": 1},
]
BAD = [
    {"stem": "Doppelte Antworten?", "options": ["ja", "Ja ", "nein"], "answer": 0, "explanation": "", "source": 1},
    {"stem": "Index zu groß?", "options": ["a", "b"], "answer": 2, "explanation": "", "source": 1},
    {"stem": "   ", "options": ["a", "b"], "answer": 0, "explanation": "", "source": 1},
]


def finished(set_id):
    found = QuestionSet.objects.get(pk=set_id)
    return found if found.generation in (QuestionSet.DONE, QuestionSet.FAILED) else None


COURSE_TEXTS = [("systemstart.md", INIT_TEXT)]  # for the course fixture (tests/support.py)


@pytest.fixture
def init_section(course):
    return Section.objects.get(document__course=course, title="Der Init-Prozess")


def start(client, course, token, section, count=5):
    response = client.post(f"/c/{course.pk}/questions/", {"section": section.pk, "count": count, "lt": token})
    assert response.status_code == 302, response.content[:500]
    return QuestionSet.objects.get(course=course)


def generated_set(client, course, stub, section, questions=GOOD):
    """A lecturer asks for questions; the worker generates them from the stub's JSON."""
    _, token = make_member(course, Membership.INSTRUCTOR)
    point_tutor_at(course, stub.url)
    stub.reply = json.dumps({"questions": questions})
    started = start(client, course, token, section)
    return wait_for(lambda: finished(started.pk)), token


def test_generation_stores_valid_drafts_and_drops_invalid_ones(celery_worker, stub_llm, client, course,
                                                               init_section):
    question_set, token = generated_set(client, course, stub_llm, init_section, GOOD + BAD)

    assert question_set.generation == QuestionSet.DONE and question_set.dropped == 3
    stored = list(question_set.questions.order_by("position"))
    assert [q.stem for q in stored] == [g["stem"] for g in GOOD]
    assert all(q.review == Question.DRAFT and not q.edited for q in stored)
    assert stored[0].options == ["0", "1", "42", "100"] and stored[0].correct_index == 1
    assert stored[0].source_chunk.section_id == init_section.pk and stored[0].source_section_id == init_section.pk

    sent = stub_llm.requests[-1]["body"]
    assert sent["stream"] is False
    assert sent["response_format"]["type"] == "json_object"  # the configured JSON mode: json_object_schema
    assert sent["response_format"]["schema"]["required"] == ["questions"]
    assert sent["response_format"]["schema"]["properties"]["questions"]["maxItems"] == 5
    prompt = sent["messages"][-1]["content"]
    assert "Prozessnummer 1 (PID 1)" in prompt and "apt install" not in prompt  # only the chosen section
    assert "Schreibe 5 Fragen auf Deutsch" in prompt

    page = client.get(f"/c/{course.pk}/questions/{question_set.pk}/?lt={token}")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Welches Init-System" in html and "3 unusable questions were dropped" in html
    assert f"/courses/{course.pk}/passage/{stored[0].source_chunk_id}/" in html


def test_rerunning_the_generation_creates_nothing_twice(celery_worker, stub_llm, client, course, init_section):
    question_set, _token = generated_set(client, course, stub_llm, init_section)
    calls = len(stub_llm.requests)
    assert generate(question_set.pk) == "skipped"  # a task delivered again after it finished
    assert question_set.questions.count() == len(GOOD) and len(stub_llm.requests) == calls

    # A worker killed mid-task leaves the set "running" with nothing stored; the redelivered task completes it once.
    crashed = QuestionSet.objects.create(course=course, title="B", requested=3, generation=QuestionSet.RUNNING)
    crashed.sections.set([init_section])
    assert generate(crashed.pk) == "done" and generate(crashed.pk) == "skipped"
    assert crashed.questions.count() == len(GOOD)
    assert sorted(crashed.questions.values_list("position", flat=True)) == [1, 2, 3]


def test_inference_down_fails_with_a_reason_and_can_be_retried(celery_worker, stub_llm, client, course,
                                                                init_section):
    _, token = make_member(course, Membership.INSTRUCTOR)
    point_tutor_at(course, closed_port_url(), timeout_seconds=2)
    started = start(client, course, token, init_section)
    question_set = wait_for(lambda: finished(started.pk))
    assert question_set.generation == QuestionSet.FAILED and question_set.generation_error == "unavailable"
    assert question_set.questions.count() == 0

    html = client.get(f"/c/{course.pk}/questions/{question_set.pk}/?lt={token}").content.decode()
    assert "The language model server is not reachable" in html and "Try again" in html
    status = client.get(page_data(html, "generation", "status-url")).json()  # what the page polls: the API
    assert status["generation"] == "failed" and "not reachable" in status["error"]

    point_tutor_at(course, stub_llm.url)
    stub_llm.reply = json.dumps({"questions": GOOD})
    client.post(f"/c/{course.pk}/questions/{question_set.pk}/action/", {"action": "retry", "lt": token})
    question_set = wait_for(lambda: finished(question_set.pk))
    assert question_set.generation == QuestionSet.DONE and question_set.questions.count() == len(GOOD)
    assert list(question_set.sections.all()) == [init_section]


def test_a_stalled_generation_can_be_started_again(celery_worker, stub_llm, client, course, init_section):
    """A worker lost for good leaves the set "generating"; after the time limit the lecturer may start it again."""
    _, token = make_member(course, Membership.INSTRUCTOR)
    point_tutor_at(course, stub_llm.url)
    stub_llm.reply = json.dumps({"questions": GOOD})
    lost = QuestionSet.objects.create(course=course, title="Verloren", generation=QuestionSet.RUNNING,
                                      generation_changed_at=timezone.now() - timedelta(minutes=5))
    lost.sections.set([init_section])
    action = f"/c/{course.pk}/questions/{lost.pk}/action/"
    client.post(action, {"action": "retry", "lt": token})  # still within the time limit: refused
    assert QuestionSet.objects.get(pk=lost.pk).generation_changed_at < timezone.now() - timedelta(minutes=4)
    assert "stopped without a result" not in client.get(f"/c/{course.pk}/questions/{lost.pk}/?lt={token}").content.decode()

    QuestionSet.objects.filter(pk=lost.pk).update(generation_changed_at=timezone.now() - timedelta(hours=1))
    assert "stopped without a result" in client.get(f"/c/{course.pk}/questions/{lost.pk}/?lt={token}").content.decode()
    client.post(action, {"action": "retry", "lt": token})
    assert wait_for(lambda: finished(lost.pk)).questions.count() == len(GOOD)


def test_model_answer_without_usable_questions_fails_clearly(celery_worker, stub_llm, client, course, init_section):
    question_set, _token = generated_set(client, course, stub_llm, init_section, BAD)
    assert question_set.generation == QuestionSet.FAILED and question_set.generation_error == "no_valid"
    stub_llm.reply = "kein JSON"
    QuestionSet.objects.filter(pk=question_set.pk).update(generation=QuestionSet.QUEUED)
    assert generate(question_set.pk) == "failed"
    assert QuestionSet.objects.get(pk=question_set.pk).generation_error == "bad_response"


def test_review_release_and_practice(celery_worker, stub_llm, client, course, init_section):
    question_set, teacher = generated_set(client, course, stub_llm, init_section)
    learner, student = make_member(course)
    first, second, third = question_set.questions.order_by("position")
    base = f"/c/{course.pk}/questions/{question_set.pk}"

    # Learners see neither the lecturer's pages nor a set that is not released.
    assert client.get(f"{base}/?lt={student}").status_code == 403
    assert client.post(f"{base}/action/", {"action": "release", "lt": student}).status_code == 403
    assert client.get(f"/c/{course.pk}/practice/{question_set.pk}/?lt={student}").status_code == 404
    assert "Welche Prozessnummer" not in client.get(f"/c/{course.pk}/practice/?lt={student}").content.decode()

    # Nothing approved: release is refused.
    client.post(f"{base}/action/", {"action": "release", "lt": teacher})
    assert QuestionSet.objects.get(pk=question_set.pk).status == QuestionSet.DRAFT

    # Edit with duplicate options is refused; a good edit is kept and marked.
    client.post(f"{base}/q/{first.pk}/", {"stem": "X?", "option": ["a", "a"], "correct": "0", "lt": teacher})
    first.refresh_from_db()
    assert first.stem == GOOD[0]["stem"] and not first.edited
    client.post(f"{base}/q/{first.pk}/", {"stem": "Welche PID hat init?", "option": ["1", "2", "3"],
                                          "correct": "0", "explanation": "PID 1.", "lt": teacher})
    first.refresh_from_db()
    assert (first.stem, first.options, first.correct_index, first.edited) == ("Welche PID hat init?",
                                                                              ["1", "2", "3"], 0, True)
    for question, decision in ((first, "approved"), (second, "rejected"), (third, "approved")):
        client.post(f"{base}/q/{question.pk}/", {"decision": decision, "lt": teacher})
    client.post(f"{base}/action/", {"action": "release", "lt": teacher})
    assert QuestionSet.objects.get(pk=question_set.pk).status == QuestionSet.RELEASED
    client.post(f"{base}/q/{third.pk}/", {"decision": "rejected", "lt": teacher})  # frozen once released
    assert Question.objects.get(pk=third.pk).review == Question.APPROVED

    page = client.get(f"/c/{course.pk}/practice/{question_set.pk}/?lt={student}").content.decode()
    assert "Welche PID hat init?" in page and "Wer startet den Init-Prozess?" in page
    assert GOOD[1]["stem"] not in page  # rejected

    answer = client.post(f"/c/{course.pk}/practice/{question_set.pk}/",
                         {f"q-{first.pk}": "0", f"q-{third.pk}": "2", f"q-{second.pk}": "1", "lt": student})
    assert answer.status_code == 302
    attempt = Attempt.objects.get(user=learner)
    assert (attempt.score, attempt.max_score) == (1, 2)
    assert attempt.answers == {str(first.pk): 0, str(third.pk): 2}  # the rejected question is not scored
    assert attempt.grade_status == Attempt.NOT_GRADED
    result = client.get(answer["Location"]).content.decode()
    assert "You answered 1 of 2 questions correctly." in result
    assert "Der Kernel startet ihn beim Systemstart." in result
    passage = f"/courses/{course.pk}/passage/{third.source_chunk_id}/"
    assert passage in result
    assert client.get(f"{passage}?lt={student}").status_code == 200

    other, other_token = make_member(course)
    assert client.get(answer["Location"].split("?")[0] + f"?lt={other_token}").status_code == 404

    # The person's attempts are part of their data export and deletion.
    exported = export_user_data(learner.pk)["practice_attempts"]
    assert [(a["score"], a["max_score"], a["gradebook"]) for a in exported] == [(1, 2, "none")]
    assert delete_user_data(learner.pk)["attempts"] == 1 and not Attempt.objects.exists()


def test_released_set_exports_as_moodle_xml_and_gift(celery_worker, stub_llm, client, course, init_section):
    question_set, teacher = generated_set(client, course, stub_llm, init_section)
    _, student = make_member(course)
    base = f"/c/{course.pk}/questions/{question_set.pk}"
    assert client.get(f"{base}/export.xml?lt={teacher}").status_code == 404  # not released yet
    first, second, third = question_set.questions.order_by("position")
    Question.objects.filter(pk__in=[first.pk, third.pk]).update(review=Question.APPROVED)
    client.post(f"{base}/action/", {"action": "release", "lt": teacher})

    response = client.get(f"{base}/export.xml?lt={teacher}")
    assert response.status_code == 200 and "attachment" in response["Content-Disposition"]
    quiz = ET.fromstring(response.content)
    items = quiz.findall("question[@type='multichoice']")
    assert [q.findtext("questiontext/text") for q in items] == [f"<p>{GOOD[0]['stem']}</p>",
                                                                f"<p>{GOOD[2]['stem']}</p>"]
    answers = items[0].findall("answer")
    assert [a.findtext("text") for a in answers] == GOOD[0]["options"]
    assert [a.get("fraction") for a in answers] == ["0", "100", "0", "0"]
    assert items[0].findtext("single") == "true"

    gift = client.get(f"{base}/export.gift?lt={teacher}").content.decode()
    assert ("::01 Welche Prozessnummer hat der Init-Prozess?::[html]Welche Prozessnummer hat der Init-Prozess? "
            "{\n~0\n=1\n~42\n~100\n####Der Init-Prozess") in gift
    assert client.get(f"{base}/export.xml?lt={student}").status_code == 403


def test_generation_needs_a_section_with_text(client, course):
    _, token = make_member(course, Membership.INSTRUCTOR)
    response = client.post(f"/c/{course.pk}/questions/", {"section": "999999", "count": 3, "lt": token},
                           follow=True)
    assert "Please choose a section of the course texts." in response.content.decode()
    section = Section.objects.filter(document__course=course).first()
    response = client.post(f"/c/{course.pk}/questions/", {"section": section.pk, "count": 99, "lt": token},
                           follow=True)
    assert "between 1 and 20 questions" in response.content.decode()
    assert not QuestionSet.objects.exists()
    assert Chunk.objects.filter(course=course).exists()


def test_question_pages_are_german(client, course):
    _, teacher = make_member(course, Membership.INSTRUCTOR)
    _, student = make_member(course)
    page = client.get(f"/c/{course.pk}/questions/?lt={teacher}", HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "Fragen erzeugen" in page and "Anzahl der Fragen" in page and "Generate questions" not in page
    page = client.get(f"/c/{course.pk}/practice/?lt={student}", HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "Es gibt noch keine Übungsfragen." in page and "Üben" in page


@pytest.mark.llm
def test_generation_with_the_real_model_follows_the_schema(celery_worker, llama_server, client, course,  # noqa: F811
                                                          init_section):
    """SmolLM2 through llama.cpp: the schema-constrained answer always parses; what it stores passes the checks
    (a 135M model may well produce nothing usable, which must then be a clear "no usable questions")."""
    _, token = make_member(course, Membership.INSTRUCTOR)
    point_tutor_at(course, llama_server, timeout_seconds=300)
    started = start(client, course, token, init_section, count=2)
    question_set = wait_for(lambda: finished(started.pk), timeout=400)
    assert question_set.generation_error in ("", "no_valid"), (question_set.generation_error,
                                                              question_set.generation_detail)
    for question in question_set.questions.all():
        assert question.stem and len(set(question.options)) == len(question.options) >= 2
        assert 0 <= question.correct_index < len(question.options)
    print(f"SmolLM2: {question_set.questions.count()} questions stored, {question_set.dropped} dropped, "
          f"state {question_set.generation} {question_set.generation_error} {question_set.generation_detail}")
