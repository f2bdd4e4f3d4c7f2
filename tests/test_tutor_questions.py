"""Question sets through the real stack: lecturer pages (Django test client), the Celery worker on the
generate queue, PostgreSQL, and the loopback stub inference server answering with deterministic JSON."""

import json
import re
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from courses.models import Chunk, Membership, Section
from tests.support import (
    INIT_TEXT,
    QuestionModelStub,
    closed_port_url,
    make_member,
    page_data,
    point_tutor_at,
    session_headers,
    wait_for,
)
from tests.test_tutor_llm import llama_server  # noqa: F401  (the real llama.cpp server fixture)
from tutor.chat.retention import delete_user_data, export_user_data
from tutor.models import TutorConfig
from tutor.questions import exports
from tutor.questions.generation import generate
from tutor.questions.models import Attempt, GenerationPart, Question, QuestionChange, QuestionSet

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

GOOD = [
    {"stem": "Welche Prozessnummer hat der Init-Prozess?", "options": ["0", "1", "42", "100"], "answer": 1,
     "explanation": "Der Init-Prozess hat die PID 1.", "source": 1},
    {"stem": "Welches Init-System ist unter Debian voreingestellt?", "options": ["SysV", "systemd", "upstart"],
     "answer": 1, "explanation": "systemd ist voreingestellt.", "source": 1},
    {"stem": "Wer startet den Init-Prozess?", "options": ["Der Kernel", "Der Benutzer", "APT"], "answer": 0,
     "explanation": "Der Kernel startet ihn beim Systemstart.", "source": 1},
]
OTHER = [  # about the same section, but other questions
    {"stem": "Was startet systemd beim Systemstart?", "options": ["Die Dienste", "Den Webbrowser", "Das BIOS"],  # the text
     # says the kernel starts (at boot) too: "Den Kernel" would be a wrong answer the text supports
     "answer": 0, "explanation": "systemd startet die Dienste in der richtigen Reihenfolge.", "source": 1},
    {"stem": "In welcher Reihenfolge startet systemd die Dienste?", "options": ["In der richtigen", "Zufällig",
                                                                               "Alphabetisch"],
     "answer": 0, "explanation": "Es startet sie in der richtigen Reihenfolge.", "source": 1},
    {"stem": "Welcher Prozess wird beim Systemstart zuerst gestartet?", "options": ["Der Init-Prozess", "apt",
                                                                                   "Der Editor"],
     "answer": 0, "explanation": "Der Init-Prozess ist der erste Prozess.", "source": 1},
]
BAD = [
    {"stem": "Doppelte Antworten?", "options": ["ja", "Ja ", "nein"], "answer": 0, "explanation": "", "source": 1},
    {"stem": "Index zu groß?", "options": ["a", "b"], "answer": 2, "explanation": "", "source": 1},
    {"stem": "   ", "options": ["a", "b"], "answer": 0, "explanation": "", "source": 1},
]


def generation_requests(stub):
    """The bodies of the requests that asked the stub model for questions."""
    return [r["body"] for r in stub.requests if "questions" in (r["body"].get("response_format") or {}).get(
        "schema", {}).get("properties", {})]


def finished(set_id):
    found = QuestionSet.objects.get(pk=set_id)
    return found if found.generation in (QuestionSet.DONE, QuestionSet.FAILED) else None


COURSE_TEXTS = [("systemstart.md", INIT_TEXT)]  # for the course fixture (tests/support.py)


@pytest.fixture
def init_section(course):
    return Section.objects.get(document__course=course, title="Der Init-Prozess")


def start(client, course, token, section, count=5):
    response = client.post(f"/c/{course.pk}/questions/", {"section": section.pk, "count": count}, headers=session_headers(token))
    assert response.status_code == 302, response.content[:500]
    return QuestionSet.objects.get(course=course)


def generated_set(client, course, stub, section, questions=GOOD, count=5):
    """A lecturer asks for questions; the worker generates them from the stub's JSON (asked again for what is
    missing, the stub has nothing more to offer)."""
    _, token = make_member(course, Membership.INSTRUCTOR)
    point_tutor_at(course, stub.url, question_method=TutorConfig.WHOLE_PASSAGE)
    stub.reply = QuestionModelStub(questions, [])
    started = start(client, course, token, section, count)
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

    sent = generation_requests(stub_llm)[0]
    assert sent["stream"] is False
    assert sent["response_format"]["type"] == "json_object"  # the configured JSON mode: json_object_schema
    assert sent["response_format"]["schema"]["required"] == ["questions"]
    assert sent["response_format"]["schema"]["properties"]["questions"]["maxItems"] == 5
    prompt = sent["messages"][-1]["content"]
    assert "Prozessnummer 1 (PID 1)" in prompt and "apt install" not in prompt  # only the chosen section
    assert "Schreibe 5 Multiple-Choice-Fragen auf Deutsch" in prompt

    page = client.get(f"/c/{course.pk}/questions/{question_set.pk}/", headers=session_headers(token))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Welches Init-System" in html and "3 questions were dropped by the checks:" in html
    assert "asked for 5, made 3, dropped 3" in html and "Not exactly the declared number of correct answers" in html
    assert f"/courses/{course.pk}/passage/{stored[0].source_chunk_id}/" in html


def test_rerunning_the_generation_creates_nothing_twice(celery_worker, stub_llm, client, course, init_section):
    question_set, _token = generated_set(client, course, stub_llm, init_section)
    calls = len(stub_llm.requests)
    assert generate(question_set.pk) == "skipped"  # a task delivered again after it finished
    assert question_set.questions.count() == len(GOOD) and len(stub_llm.requests) == calls

    # A worker killed mid-task leaves the set "running" with nothing stored; the redelivered task completes it once.
    stub_llm.reply = QuestionModelStub(OTHER)  # the same questions again would be near-duplicates: dropped
    crashed = QuestionSet.objects.create(course=course, title="B", requested=3, generation=QuestionSet.RUNNING)
    crashed.sections.set([init_section])
    assert generate(crashed.pk) == "done" and generate(crashed.pk) == "skipped"
    assert crashed.questions.count() == len(OTHER)
    assert sorted(crashed.questions.values_list("position", flat=True)) == [1, 2, 3]


def test_inference_down_fails_with_a_reason_and_can_be_retried(celery_worker, stub_llm, client, course,
                                                                init_section):
    _, token = make_member(course, Membership.INSTRUCTOR)
    # the whole-passage method always asks the model (answer first asks none where no sentence of the section has
    # a key it trusts, and says so: tests/test_tutor_answer_first.py)
    point_tutor_at(course, closed_port_url(), timeout_seconds=2, question_method=TutorConfig.WHOLE_PASSAGE)
    started = start(client, course, token, init_section)
    question_set = wait_for(lambda: finished(started.pk))
    assert question_set.generation == QuestionSet.FAILED and question_set.generation_error == "unavailable"
    assert question_set.questions.count() == 0

    html = client.get(f"/c/{course.pk}/questions/{question_set.pk}/", headers=session_headers(token)).content.decode()
    assert "The language model server is not reachable" in html and "Try again" in html
    status = client.get(page_data(html, "generation", "status-url"), headers=session_headers(token)).json()  # what the page polls: the API
    assert status["generation"] == "failed" and "not reachable" in status["error"]

    point_tutor_at(course, stub_llm.url, question_method=TutorConfig.WHOLE_PASSAGE)
    stub_llm.reply = json.dumps({"questions": GOOD})
    client.post(f"/c/{course.pk}/questions/{question_set.pk}/action/", {"action": "retry"}, headers=session_headers(token))
    question_set = wait_for(lambda: finished(question_set.pk))
    assert question_set.generation == QuestionSet.DONE and question_set.questions.count() == len(GOOD)
    assert list(question_set.sections.all()) == [init_section]


def test_a_stalled_generation_can_be_started_again(celery_worker, stub_llm, client, course, init_section):
    """A worker lost for good leaves the set "generating"; after the time limit the lecturer may start it again."""
    _, token = make_member(course, Membership.INSTRUCTOR)
    point_tutor_at(course, stub_llm.url, question_method=TutorConfig.WHOLE_PASSAGE)
    stub_llm.reply = json.dumps({"questions": GOOD})
    lost = QuestionSet.objects.create(course=course, title="Verloren", generation=QuestionSet.RUNNING,
                                      generation_changed_at=timezone.now() - timedelta(minutes=5))
    lost.sections.set([init_section])
    action = f"/c/{course.pk}/questions/{lost.pk}/action/"
    client.post(action, {"action": "retry"}, headers=session_headers(token))  # still within the time limit: refused
    assert QuestionSet.objects.get(pk=lost.pk).generation_changed_at < timezone.now() - timedelta(minutes=4)
    assert "stopped without a result" not in client.get(f"/c/{course.pk}/questions/{lost.pk}/", headers=session_headers(token)).content.decode()

    QuestionSet.objects.filter(pk=lost.pk).update(generation_changed_at=timezone.now() - timedelta(hours=1))
    assert "stopped without a result" in client.get(f"/c/{course.pk}/questions/{lost.pk}/", headers=session_headers(token)).content.decode()
    client.post(action, {"action": "retry"}, headers=session_headers(token))
    assert wait_for(lambda: finished(lost.pk)).questions.count() == len(GOOD)


def test_model_answer_without_usable_questions_fails_clearly(celery_worker, stub_llm, client, course, init_section):
    question_set, _token = generated_set(client, course, stub_llm, init_section, BAD)
    assert question_set.generation == QuestionSet.FAILED and question_set.generation_error == "no_valid"
    stub_llm.reply = "kein JSON"
    GenerationPart.objects.filter(question_set=question_set).update(state=GenerationPart.QUEUED)
    assert generate(question_set.pk) == "failed"
    assert QuestionSet.objects.get(pk=question_set.pk).generation_error == "bad_response"


def test_review_release_and_practice(celery_worker, stub_llm, client, course, init_section):
    question_set, teacher = generated_set(client, course, stub_llm, init_section)
    learner, student = make_member(course)
    first, second, third = question_set.questions.order_by("position")
    base = f"/c/{course.pk}/questions/{question_set.pk}"

    # Learners see neither the lecturer's pages nor a set that is not released.
    assert client.get(f"{base}/", headers=session_headers(student)).status_code == 403
    assert client.post(f"{base}/action/", {"action": "release"}, headers=session_headers(student)).status_code == 403
    assert client.get(f"/c/{course.pk}/practice/{question_set.pk}/", headers=session_headers(student)).status_code == 404
    assert "Welche Prozessnummer" not in client.get(f"/c/{course.pk}/practice/", headers=session_headers(student)).content.decode()

    # Nothing approved: release is refused.
    client.post(f"{base}/action/", {"action": "release"}, headers=session_headers(teacher))
    assert QuestionSet.objects.get(pk=question_set.pk).status == QuestionSet.DRAFT

    # Edit with duplicate options is refused; a good edit is kept and marked.
    client.post(f"{base}/q/{first.pk}/", {"stem": "X?", "option": ["a", "a"], "correct": "0"}, headers=session_headers(teacher))
    first.refresh_from_db()
    assert first.stem == GOOD[0]["stem"] and not first.edited
    client.post(f"{base}/q/{first.pk}/", {"stem": "Welche PID hat init?", "option": ["1", "2", "3"],
                                          "correct": "0", "explanation": "PID 1."}, headers=session_headers(teacher))
    first.refresh_from_db()
    assert (first.stem, first.options, first.correct_index, first.edited) == ("Welche PID hat init?",
                                                                              ["1", "2", "3"], 0, True)
    for question, decision in ((first, "approved"), (second, "rejected"), (third, "approved")):
        client.post(f"{base}/q/{question.pk}/", {"decision": decision}, headers=session_headers(teacher))
    client.post(f"{base}/action/", {"action": "release"}, headers=session_headers(teacher))
    assert QuestionSet.objects.get(pk=question_set.pk).status == QuestionSet.RELEASED
    client.post(f"{base}/q/{third.pk}/", {"decision": "rejected"}, headers=session_headers(teacher))  # frozen once released
    assert Question.objects.get(pk=third.pk).review == Question.APPROVED

    page = client.get(f"/c/{course.pk}/practice/{question_set.pk}/", headers=session_headers(student)).content.decode()
    assert "Welche PID hat init?" in page and "Wer startet den Init-Prozess?" in page
    assert GOOD[1]["stem"] not in page  # rejected

    answer = client.post(f"/c/{course.pk}/practice/{question_set.pk}/",
                         {f"q-{first.pk}": "0", f"q-{third.pk}": "2", f"q-{second.pk}": "1"}, headers=session_headers(student))
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
    assert client.get(f"{passage}", headers=session_headers(student)).status_code == 200

    other, other_token = make_member(course)
    assert client.get(answer["Location"].split("?")[0], headers=session_headers(other_token)).status_code == 404

    # The person's attempts are part of their data export and deletion.
    exported = export_user_data(learner.pk)["practice_attempts"]
    assert [(a["score"], a["max_score"], a["gradebook"]) for a in exported] == [(1, 2, "none")]
    assert delete_user_data(learner.pk)["attempts"] == 1 and not Attempt.objects.exists()


def test_released_set_exports_as_moodle_xml_and_gift(celery_worker, stub_llm, client, course, init_section):
    question_set, teacher = generated_set(client, course, stub_llm, init_section)
    _, student = make_member(course)
    base = f"/c/{course.pk}/questions/{question_set.pk}"
    assert client.get(f"{base}/export.xml", headers=session_headers(teacher)).status_code == 404  # not released yet
    first, second, third = question_set.questions.order_by("position")
    Question.objects.filter(pk__in=[first.pk, third.pk]).update(review=Question.APPROVED)
    client.post(f"{base}/action/", {"action": "release"}, headers=session_headers(teacher))

    response = client.get(f"{base}/export.xml", headers=session_headers(teacher))
    assert response.status_code == 200 and "attachment" in response["Content-Disposition"]
    quiz = ET.fromstring(response.content)
    items = quiz.findall("question[@type='multichoice']")
    assert [q.findtext("questiontext/text") for q in items] == [f"<p>{GOOD[0]['stem']}</p>",
                                                                f"<p>{GOOD[2]['stem']}</p>"]
    answers = items[0].findall("answer")
    assert [a.findtext("text") for a in answers] == GOOD[0]["options"]
    assert [a.get("fraction") for a in answers] == ["0", "100", "0", "0"]
    assert items[0].findtext("single") == "true"

    gift = client.get(f"{base}/export.gift", headers=session_headers(teacher)).content.decode()
    assert ("::01 Welche Prozessnummer hat der Init-Prozess?::[html]Welche Prozessnummer hat der Init-Prozess? "
            "{\n~0\n=1\n~42\n~100\n####Der Init-Prozess") in gift
    assert client.get(f"{base}/export.xml", headers=session_headers(student)).status_code == 403


def test_generation_needs_a_section_with_text(client, course):
    _, token = make_member(course, Membership.INSTRUCTOR)
    response = client.post(f"/c/{course.pk}/questions/", {"section": "999999", "count": 3},
                           follow=True, headers=session_headers(token))
    assert "Please choose at least one section of the course texts." in response.content.decode()
    section = Section.objects.filter(document__course=course).first()
    response = client.post(f"/c/{course.pk}/questions/", {"section": section.pk, "count": 99},
                           follow=True, headers=session_headers(token))
    assert "between 1 and 20 questions per section" in response.content.decode()
    assert not QuestionSet.objects.exists()
    assert Chunk.objects.filter(course=course).exists()


def test_question_pages_are_german(client, course):
    _, teacher = make_member(course, Membership.INSTRUCTOR)
    _, student = make_member(course)
    page = client.get(f"/c/{course.pk}/questions/", HTTP_ACCEPT_LANGUAGE="de", headers=session_headers(teacher)).content.decode()
    assert "Fragen erzeugen" in page and "Fragen pro Abschnitt" in page and "Generate questions" not in page
    assert "Abschnitte finden" in page and "Test-Student" in page and "Aus Moodle importieren" in page
    page = client.get(f"/c/{course.pk}/practice/", HTTP_ACCEPT_LANGUAGE="de", headers=session_headers(student)).content.decode()
    assert "Es gibt noch keine Übungsfragen." in page and "Üben" in page


@pytest.mark.llm
def test_generation_with_the_real_model_follows_the_schema(celery_worker, llama_server, client, course,  # noqa: F811
                                                          init_section):
    """SmolLM2 through llama.cpp: the schema-constrained answer always parses; what it stores passes the checks
    (a 135M model may well produce nothing usable, which must then be a clear "no usable questions")."""
    _, token = make_member(course, Membership.INSTRUCTOR)
    point_tutor_at(course, llama_server, timeout_seconds=300, question_method=TutorConfig.WHOLE_PASSAGE)
    started = start(client, course, token, init_section, count=2)
    question_set = wait_for(lambda: finished(started.pk), timeout=400)
    assert question_set.generation_error in ("", "no_valid"), (question_set.generation_error,
                                                              question_set.generation_detail)
    for question in question_set.questions.all():
        assert question.stem and len(set(question.options)) == len(question.options) >= 2
        assert 0 <= question.correct_index < len(question.options)
    print(f"SmolLM2: {question_set.questions.count()} questions stored, {question_set.dropped} dropped, "
          f"state {question_set.generation} {question_set.generation_error} {question_set.generation_detail}")


def _other_kinds(question_set, start):
    """A question of each kind but single choice, added to the set as drafts."""
    fields = [dict(kind=Question.MULTIPLE, stem="Welche Aussagen über den Init-Prozess stimmen?",
                   options=["Er hat die PID 1", "Der Kernel startet ihn", "Er ist ein Editor"], correct_indices=[0, 1]),
              dict(kind=Question.TRUE_FALSE, stem="Der Init-Prozess hat die PID 1.", truth=True),
              dict(kind=Question.SHORT, stem="Wie heißt das voreingestellte Init-System?",
                   accepted_answers=["systemd"]),
              dict(kind=Question.OPEN, stem="Erklären Sie, was der Init-Prozess beim Systemstart tut.",
                   model_answer="Er startet als erster Prozess und dann die Dienste.", rubric="erster Prozess")]
    return [Question.objects.create(question_set=question_set, position=start + n, **f) for n, f in enumerate(fields)]


def test_review_edits_every_kind_bulk_rewrites_and_keeps_the_history(celery_worker, stub_llm, client, course,
                                                                     init_section):
    question_set, teacher = generated_set(client, course, stub_llm, init_section, count=3)
    first, second, third = question_set.questions.order_by("position")
    multiple, truth, short, essay = _other_kinds(question_set, 4)
    base = f"/c/{course.pk}/questions/{question_set.pk}"

    client.post(f"{base}/action/", {"action": "approved", "question": [first.pk, second.pk]}, headers=session_headers(teacher))
    assert set(question_set.questions.approved().values_list("pk", flat=True)) == {first.pk, second.pk}
    client.post(f"{base}/action/", {"action": "rejected", "question": [second.pk, third.pk]}, headers=session_headers(teacher))
    assert Question.objects.get(pk=third.pk).review == Question.REJECTED

    def edit(question, **fields):
        return client.post(f"{base}/q/{question.pk}/", {"explanation": "", **fields}, follow=True, headers=session_headers(teacher))

    edit(multiple, stem="Welche Aussagen stimmen?", option=["Er hat die PID 1", "Er ist ein Editor", "Er heißt apt",
                                                            "Der Kernel startet ihn"], correct=["0", "3"])
    edit(truth, stem="Der Init-Prozess hat die PID 0.", truth="false")
    edit(short, stem="Wie heißt das voreingestellte Init-System unter Debian?", accepted="systemd\nSystemD*",
         case_sensitive="1")
    edit(essay, stem="Erklären Sie den Systemstart unter Debian.", model_answer="Der Kernel startet init.",
         rubric="nennt den Kernel\nnennt init")
    multiple.refresh_from_db(), truth.refresh_from_db(), short.refresh_from_db(), essay.refresh_from_db()
    assert (multiple.options[3], multiple.correct_indices, multiple.edited) == ("Der Kernel startet ihn", [0, 3], True)
    assert (truth.stem, truth.truth) == ("Der Init-Prozess hat die PID 0.", False)
    assert (short.accepted_answers, short.case_sensitive) == (["systemd", "SystemD*"], True)
    assert (essay.model_answer, essay.rubric) == ("Der Kernel startet init.", "nennt den Kernel\nnennt init")

    refused = edit(first, stem="Welche PID?", option=["1"], correct="0").content.decode()
    assert "This question cannot be saved: Too few or too many options, or an empty one." in refused
    assert Question.objects.get(pk=first.pk).options == GOOD[0]["options"]
    edit(first, stem=GOOD[0]["stem"], option=["0", "1", "die Nummer, die der Kernel dem ersten Prozess gibt"],
         correct="1")  # kept, but flagged: the longest option gives itself away
    first.refresh_from_db()
    assert first.flagged and any(c["check"] == "form" and c["reason"] == "lengths" for c in first.checks)
    assert any(c.get("stale") for c in first.checks if c["check"] == "test_student")

    # The model rewrites a wrong option and the explanation (queue generate); a correct option it does not touch.
    stub_llm.reply = QuestionModelStub(revision="Die Prozessnummer 7")
    client.post(f"{base}/q/{second.pk}/", {"revise": "option:0"}, headers=session_headers(teacher))
    wait_for(lambda: not Question.objects.get(pk=second.pk).revising)
    assert Question.objects.get(pk=second.pk).options[0] == "Die Prozessnummer 7"
    client.post(f"{base}/q/{second.pk}/", {"revise": "explanation"}, headers=session_headers(teacher))
    wait_for(lambda: not Question.objects.get(pk=second.pk).revising)
    assert Question.objects.get(pk=second.pk).explanation == "Die Prozessnummer 7"
    page = client.post(f"{base}/q/{second.pk}/", {"revise": "option:1"}, follow=True, headers=session_headers(teacher)).content.decode()
    assert "A correct option is not rewritten: edit it yourself." in page

    history = [(c.action, sorted(c.changes)) for c in Question.objects.get(pk=second.pk).changes.order_by("at", "id")]
    assert history == [("generated", []), ("approved", []), ("rejected", []), ("regenerated", ["options"]),
                       ("regenerated", ["explanation"])]
    editor = QuestionChange.objects.filter(question=multiple, action="edited").get()
    assert editor.user.memberships.get().role == Membership.INSTRUCTOR
    assert editor.changes["correct_indices"] == [[0, 1], [0, 3]]
    page = client.get(f"{base}/", headers=session_headers(teacher)).content.decode()
    assert "Change history (5)" in page and "rewritten by the model" in page and editor.user.username in page


def test_a_rewrite_that_arrives_after_the_release_leaves_the_released_set_as_it_is(course):
    """The lecturer asks the model for a new explanation and releases the set before it comes back: the released
    question keeps what the students see, and its history says why the rewrite was not used."""
    from tutor.questions import review

    def pending(title):
        question_set = QuestionSet.objects.create(course=course, title=title)
        question = Question.objects.create(question_set=question_set, position=1, stem="Welche PID hat init?",
                                           options=["0", "1"], correct_index=1, explanation="Die erste PID.",
                                           review=Question.APPROVED, revising="explanation")
        return question_set, question

    draft_set, draft = pending("Entwurf")
    review.save_revision(draft, "explanation", "Neu vom Modell.")
    draft.refresh_from_db()
    assert (draft.explanation, draft.revising) == ("Neu vom Modell.", "")

    released_set, released = pending("Freigegeben")
    review.release(released_set)
    review.save_revision(released, "explanation", "Neu vom Modell.")
    released.refresh_from_db()
    assert (released.explanation, released.revising) == ("Die erste PID.", "")
    assert list(released.changes.values_list("action", flat=True)) == ["revision_dropped"]
    assert review.change_label("revision_dropped") == "the model's rewrite came after the release and was not used"


def test_students_practise_every_kind_and_see_their_result(client, course):
    question_set = QuestionSet.objects.create(course=course, title="Alle Arten", status=QuestionSet.RELEASED)
    single = Question.objects.create(question_set=question_set, position=1, stem="Welche PID hat init?",
                                     options=["0", "1"], correct_index=1, review=Question.APPROVED)
    others = _other_kinds(question_set, 2)
    Question.objects.filter(pk__in=[q.pk for q in others]).update(review=Question.APPROVED)
    multiple, truth, short, essay = others
    learner, token = make_member(course)
    page = client.get(f"/c/{course.pk}/practice/{question_set.pk}/", headers=session_headers(token)).content.decode()
    assert f'type="checkbox" name="q-{multiple.pk}"' in page and f'name="q-{truth.pk}" value="true"' in page
    assert f'<textarea name="q-{essay.pk}"' in page and "The best attempt counts." in page
    answer = client.post(f"/c/{course.pk}/practice/{question_set.pk}/", {
        f"q-{single.pk}": "1", f"q-{multiple.pk}": ["0"], f"q-{truth.pk}": "true", f"q-{short.pk}": " SystemD ",
        f"q-{essay.pk}": "Er startet zuerst."}, headers=session_headers(token))
    attempt = Attempt.objects.get(user=learner)
    assert attempt.max_score == 4 and attempt.score == 3.5  # the multiple answer half right; the essay not scored
    assert attempt.credits == {str(single.pk): 1.0, str(multiple.pk): 0.5, str(truth.pk): 1.0, str(short.pk): 1.0,
                               str(essay.pk): None}
    assert attempt.answers[str(multiple.pk)] == [0] and attempt.answers[str(essay.pk)] == "Er startet zuerst."
    result = client.get(answer["Location"]).content.decode()
    assert "You answered 3.5 of 4 questions correctly." in result and "partly correct (0.5)" in result
    assert "Er startet als erster Prozess und dann die Dienste." in result and "not scored" in result


# --- Options shuffled per student and attempt; a set's title and source (issue 24 §3) ---------------------------

def _shown(page, question):
    """The option indices of a choice question in the order the practice page shows them."""
    return [int(i) for i in re.findall(rf'name="q-{question.pk}" value="(\d+)"', page)]


def test_options_are_shuffled_for_each_student_and_attempt_and_kept_within_one(client, course):
    """An imported set whose right answer comes first: students see the options in orders of their own, the same on
    every showing of one attempt, a new one for the next attempt; the answers still name the options themselves.
    Where the set keeps the lecturer's order, everyone sees that."""
    question_set = QuestionSet.objects.create(course=course, title="Gemischt", status=QuestionSet.RELEASED)
    questions = [Question.objects.create(question_set=question_set, position=n, stem=f"Welche Zahl ist {n}?",
                                         options=[str(n), "a", "b", "c", "d", "e"], correct_index=0,
                                         origin=Question.IMPORTED, review=Question.APPROVED) for n in range(1, 5)]
    url = f"/c/{course.pk}/practice/{question_set.pk}/"
    learner, token = make_member(course)
    _other, other_token = make_member(course)
    page = client.get(f"{url}", headers=session_headers(token)).content.decode()
    mine = [_shown(page, q) for q in questions]
    assert all(sorted(order) == list(range(6)) for order in mine)
    assert mine != [list(range(6))] * 4  # not the lecturer's order for everyone
    assert [_shown(client.get(f"{url}", headers=session_headers(token)).content.decode(), q) for q in questions] == mine  # a reload
    theirs = [_shown(client.get(f"{url}", headers=session_headers(other_token)).content.decode(), q) for q in questions]
    assert theirs != mine

    client.post(url, {**{f"q-{q.pk}": "0" for q in questions}}, headers=session_headers(token))  # the right option, wherever shown
    assert Attempt.objects.get(user=learner).score == 4
    again = [_shown(client.get(f"{url}", headers=session_headers(token)).content.decode(), q) for q in questions]
    assert again != mine  # the next attempt: a new order

    QuestionSet.objects.filter(pk=question_set.pk).update(shuffle_options=False)
    kept = [_shown(client.get(f"{url}", headers=session_headers(token)).content.decode(), q) for q in questions]
    assert kept == [list(range(6))] * 4
    xml = exports.moodle_xml(QuestionSet.objects.get(pk=question_set.pk)).decode()
    assert "<shuffleanswers>false</shuffleanswers>" in xml and "<shuffleanswers>true</shuffleanswers>" not in xml


def test_an_imported_set_gets_its_title_and_says_where_its_questions_come_from(client, course):
    from tests.test_tutor_exports import LECTURER_FILE

    _, teacher = make_member(course, Membership.INSTRUCTOR)
    upload = SimpleUploadedFile("bs_fragen.xml", LECTURER_FILE, content_type="text/xml")
    answer = client.post(f"/c/{course.pk}/questions/import/", {"file": upload, "title": "Prozesse: Wiederholung",
                                                                "set": ""}, headers=session_headers(teacher))
    assert answer.status_code == 302
    imported = QuestionSet.objects.get(course=course)
    assert imported.title == "Prozesse: Wiederholung"
    page = client.get(answer["Location"]).content.decode()
    assert re.search(r'<p id="source"><strong>Source:</strong>\s*Imported</p>', page), page
    assert 'id="generation"' not in page and "Generated" not in page

    client.post(f"/c/{course.pk}/questions/{imported.pk}/action/", {"action": "details", "title": " Prozesse  II "}, headers=session_headers(teacher))
    imported.refresh_from_db()
    assert (imported.title, imported.shuffle_options) == ("Prozesse II", False)
    refused = client.post(f"/c/{course.pk}/questions/{imported.pk}/action/",
                          {"action": "details", "title": " ", "shuffle_options": "1"}, follow=True, headers=session_headers(teacher))
    assert "Please give the set a title." in refused.content.decode()
    assert QuestionSet.objects.get(pk=imported.pk).title == "Prozesse II"

    Question.objects.create(question_set=imported, position=9, stem="Was ist ein Thread?", kind=Question.OPEN,
                            model_answer="Ein Ausführungsstrang.", origin=Question.WRITTEN)
    listing = client.get(f"/c/{course.pk}/questions/", headers=session_headers(teacher)).content.decode()
    assert "Imported, Written by hand" in listing
