"""A whole text at once (tutor.questions.generation): the lecturer picks a document or chapters in the section tree
and asks for N questions per section; each section is its own task on the generate queue, a set per section
(placeable beside it) or one set for all; a failing section stops no other; generating again fills only what is
missing. Through the real stack (Celery worker, PostgreSQL, the stub model on loopback), and once with the real
llama.cpp server."""

import json

import pytest

from courses import sections as course_sections
from courses.models import Membership, Section
from lti import placements
from tests.support import QuestionModelStub, make_member, page_data, point_tutor_at, session_headers, wait_for
from tests.test_tutor_llm import llama_server  # noqa: F401  (the real llama.cpp server fixture)
from tutor.models import TutorConfig
from tutor.questions import generation, items, review
from tutor.questions.models import GenerationPart, GenerationRun, Question, QuestionSet

pytestmark = [pytest.mark.django_db(transaction=True)]

BOOK = """# Systemstart

## Der Init-Prozess

Der Init-Prozess ist der erste Prozess, den der Kernel beim Systemstart startet. Er hat die Prozessnummer 1.

## Dienste

Dienste startet systemd in der richtigen Reihenfolge; systemctl zeigt ihren Zustand.

# Paketverwaltung

## APT

Pakete installiert man unter Debian mit dem Befehl apt install. Die Paketquellen stehen in sources.list.

## Netzwerk

Die Netzwerkschnittstellen werden in /etc/network/interfaces konfiguriert.
"""
COURSE_TEXTS = [("buch.md", BOOK)]
SECTIONS = ["Der Init-Prozess", "Dienste", "APT", "Netzwerk"]
QUESTIONS = {
    "Der Init-Prozess": [
        {"stem": "Welche Prozessnummer hat der Init-Prozess?", "options": ["0", "1", "42"], "answer": 1,
         "explanation": "Er hat die Prozessnummer 1.", "source": 1},
        {"stem": "Wer startet den Init-Prozess beim Systemstart?", "options": ["Der Kernel", "Der Benutzer", "APT"],
         "answer": 0, "explanation": "Der Kernel startet ihn.", "source": 1}],
    "Dienste": [
        {"stem": "Welches Programm startet die Dienste?", "options": ["systemd", "apt", "vi"], "answer": 0,
         "explanation": "systemd startet sie.", "source": 1},
        {"stem": "Womit sieht man den Zustand der Dienste?", "options": ["systemctl", "ls", "cat"], "answer": 0,
         "explanation": "systemctl zeigt ihn.", "source": 1}],
    "APT": [
        {"stem": "Mit welchem Befehl installiert man Pakete unter Debian?", "options": ["apt install", "rm", "cd"],
         "answer": 0, "explanation": "apt install installiert sie.", "source": 1},
        {"stem": "Wo stehen die Paketquellen von APT?", "options": ["sources.list", "fstab", "passwd"],
         "answer": 0, "explanation": "In sources.list.", "source": 1}],
    "Netzwerk": [
        {"stem": "Wo werden die Netzwerkschnittstellen konfiguriert?", "options": ["/etc/network/interfaces",
                                                                                   "/etc/passwd", "/boot"],
         "answer": 0, "explanation": "In /etc/network/interfaces.", "source": 1},
        {"stem": "Welche Datei beschreibt die Netzwerkschnittstellen unter Debian?", "options": [
            "interfaces", "hosts.deny", "motd"], "answer": 0, "explanation": "interfaces.", "source": 1}],
}


class BookModel(QuestionModelStub):
    """Writes each section's own questions (recognised by its passage); can break down for one section."""

    def __init__(self, broken=()):
        super().__init__(*QUESTIONS.values())
        self.broken, self.asked = set(broken), []

    def __call__(self, body):
        prompt = body["messages"][-1]["content"]
        if "<course_texts>" in prompt:
            section = self._section(prompt)
            self.asked.append(section)
            if section in self.broken:
                return "kein JSON"
            return json.dumps({"questions": QUESTIONS[section]})
        return super().__call__(body)

    @staticmethod
    def _section(prompt):
        markers = {"Der Init-Prozess": "Prozessnummer 1", "Dienste": "systemctl", "APT": "apt install",
                   "Netzwerk": "Netzwerkschnittstellen"}
        return next(name for name, marker in markers.items() if marker in prompt)


def finished_run(run_id):
    """Whether every section of the run has ended, and each set's state says so."""
    parts = GenerationPart.objects.filter(run_id=run_id)
    busy = [GenerationPart.QUEUED, GenerationPart.RUNNING]
    return (parts.exists() and not parts.filter(state__in=busy).exists()
            and not QuestionSet.objects.filter(parts__run_id=run_id, generation__in=busy).exists())


@pytest.mark.worker
def test_a_whole_text_becomes_a_set_per_section_and_a_failing_section_stops_no_other(celery_worker, stub_llm, client,
                                                                                     course):
    _, token = make_member(course, Membership.INSTRUCTOR)
    point_tutor_at(course, stub_llm.url, question_method=TutorConfig.WHOLE_PASSAGE)
    model = BookModel(broken={"APT"})
    stub_llm.reply = model
    document = course.documents.get()
    page = client.get(f"/c/{course.pk}/questions/", headers=session_headers(token)).content.decode()
    assert f'name="document" value="{document.pk}"' in page and 'id="section-search"' in page
    for name in SECTIONS:
        assert f">{name}" in page

    response = client.post(f"/c/{course.pk}/questions/", {"document": document.pk, "count": 2, "mode": "sections",
                                                          "kind": [items.Question.SINGLE]}, headers=session_headers(token))
    run = GenerationRun.objects.get()
    assert response.status_code == 302 and f"/questions/runs/{run.pk}/" in response["Location"]
    wait_for(lambda: finished_run(run.pk), timeout=120)

    sets = {s.section.title: s for s in QuestionSet.objects.filter(course=course).select_related("section")}
    assert sorted(sets) == sorted(SECTIONS)  # a set per section, each beside its own section
    assert {name: s.questions.count() for name, s in sets.items()} == {"Der Init-Prozess": 2, "Dienste": 2,
                                                                       "APT": 0, "Netzwerk": 2}
    assert sets["APT"].generation == QuestionSet.FAILED and sets["APT"].generation_error == "bad_response"
    assert sets["Netzwerk"].generation == QuestionSet.DONE
    for name in ("Der Init-Prozess", "Dienste", "Netzwerk"):
        assert [q.stem for q in sets[name].questions.order_by("position")] == [q["stem"] for q in QUESTIONS[name]]

    page = client.get(f"/c/{course.pk}/questions/runs/{run.pk}/", headers=session_headers(token)).content.decode()
    status = client.get(page_data(page, "run", "status-url"), headers=session_headers(token)).json()  # what the page polls: the API
    assert (status["sections"], status["done"], status["failed"], status["finished"]) == (4, 3, 1, True)
    assert (status["requested"], status["made"]) == (8, 6)
    assert [p["state"] for p in status["parts"]] == ["done", "done", "failed", "done"]  # in the text's order
    failed = next(p for p in status["parts"] if p["state"] == "failed")
    assert "did not answer in the expected form" in failed["error"]
    page = client.get(f"/c/{course.pk}/questions/runs/{run.pk}/", headers=session_headers(token)).content.decode()
    assert "3 of 4 sections done, 1 failed" in page and "Generate what is missing" in page

    # Generating what is missing asks again for the failed section only.
    model.broken.clear()
    asked_before = list(model.asked)
    client.post(f"/c/{course.pk}/questions/runs/{run.pk}/action/", {}, headers=session_headers(token))
    wait_for(lambda: finished_run(run.pk) and QuestionSet.objects.get(pk=sets["APT"].pk).questions.count() == 2,
             timeout=120)
    assert model.asked[len(asked_before):] == ["APT"]
    assert Question.objects.filter(question_set__course=course).count() == 8

    # The same request again: every section has its questions, nothing is generated, no set is added.
    client.post(f"/c/{course.pk}/questions/", {"document": document.pk, "count": 2, "mode": "sections",
                                               "kind": [items.Question.SINGLE]}, headers=session_headers(token))
    second = GenerationRun.objects.latest("created_at")
    wait_for(lambda: finished_run(second.pk), timeout=60)
    assert QuestionSet.objects.filter(course=course).count() == 4 and model.asked[len(asked_before) + 1:] == []

    # Released sets can be placed one by one beside their sections.
    for question_set in QuestionSet.objects.filter(course=course):
        question_set.questions.update(review=Question.APPROVED)
        question_set.status = QuestionSet.RELEASED
        question_set.save()
    titles = [choice.title for choice in placements.choices(course.pk)]
    for name in SECTIONS:
        assert any(title.endswith(name) for title in titles), titles


@pytest.mark.worker
def test_one_set_for_chosen_chapters_with_every_kind(celery_worker, stub_llm, client, course):
    _, token = make_member(course, Membership.INSTRUCTOR)
    point_tutor_at(course, stub_llm.url, question_method=TutorConfig.WHOLE_PASSAGE)
    [document] = review.section_tree(course)
    assert [(c["title"], [s.title for s in c["sections"]]) for c in document["chapters"]] == [
        ("Systemstart", ["Der Init-Prozess", "Dienste"]), ("Paketverwaltung", ["APT", "Netzwerk"])]
    chapter = document["chapters"][0]["key"]
    chosen = course_sections.chosen_sections(course, chapter_keys=[chapter])
    assert [s.title for s in chosen] == ["Der Init-Prozess", "Dienste"]  # the chapter's sections, not the next's
    kinds = [items.Question.TRUE_FALSE, items.Question.SHORT]
    truths = {"Der Init-Prozess": {"statement": "Der Init-Prozess hat die Prozessnummer 1.", "answer": True,
                                   "explanation": "So steht es da.", "source": 1},
              "Dienste": {"statement": "Dienste startet systemd in zufälliger Reihenfolge.", "answer": False,
                          "explanation": "In der richtigen Reihenfolge.", "source": 1}}
    shorts = {"Der Init-Prozess": {"stem": "Wer startet den ersten Prozess beim Systemstart?",
                                   "answers": ["der Kernel", "Kernel"], "explanation": "", "source": 1},
              "Dienste": {"stem": "Welches Programm zeigt den Zustand der Dienste?", "answers": ["systemctl"],
                          "explanation": "", "source": 1}}
    student = QuestionModelStub(list(truths.values()) + list(shorts.values()))

    def reply(body):
        prompt = body["messages"][-1]["content"]
        if "<course_texts>" not in prompt:
            return student(body)
        section = "Der Init-Prozess" if "Prozessnummer" in prompt else "Dienste"
        found = truths if "statement" in json.dumps(body["response_format"]) else shorts
        return json.dumps({"questions": [found[section]]})

    stub_llm.reply = reply
    response = client.post(f"/c/{course.pk}/questions/", {"chapter": chapter, "count": 2, "mode": "one",
                                                          "kind": kinds, "title": "Kapitel 1"}, headers=session_headers(token))
    question_set = QuestionSet.objects.get(title="Kapitel 1")
    assert f"/questions/{question_set.pk}/" in response["Location"]
    wait_for(lambda: QuestionSet.objects.get(pk=question_set.pk).generation == QuestionSet.DONE, timeout=120)
    assert question_set.parts.count() == 2 and question_set.kinds == kinds
    found = {(q.source_section.title, q.kind) for q in question_set.questions.select_related("source_section")}
    assert found == {(s, k) for s in ("Der Init-Prozess", "Dienste") for k in kinds}
    short = question_set.questions.get(kind=items.Question.SHORT, source_section__title="Der Init-Prozess")
    assert short.accepted_answers == ["der Kernel", "Kernel"]
    assert [c["ok"] for c in short.checks if c["check"] == "test_student"] == [True]


def test_the_choice_of_sections_is_checked(client, course):
    _, token = make_member(course, Membership.INSTRUCTOR)
    response = client.post(f"/c/{course.pk}/questions/", {"count": 2, "mode": "sections"}, follow=True, headers=session_headers(token))
    assert "Please choose at least one section of the course texts." in response.content.decode()
    section = Section.objects.get(document__course=course, title="APT")
    response = client.post(f"/c/{course.pk}/questions/", {"section": section.pk, "count": 0},
                           follow=True, headers=session_headers(token))
    assert "between 1 and 20 questions per section" in response.content.decode()
    other, other_token = make_member(course)
    assert client.post(f"/c/{course.pk}/questions/", {"section": section.pk, "count": 2}, headers=session_headers(other_token)).status_code == 403
    assert not QuestionSet.objects.exists()


@pytest.mark.llm
def test_the_real_model_s_questions_finish_cleanly_whatever_it_writes(llama_server, course,  # noqa: F811
                                                                      monkeypatch):
    """SmolLM2 through llama.cpp, the whole pipeline with the test student, a question of three kinds (the open and
    the multiple-answer question take the same path with other schemas): the section's generation ends done or failed
    with a reason, never crashed; stored questions passed the form check. Then with a token limit so small that the
    answer ends with finish_reason "length": still a clean end."""
    point_tutor_at(course, llama_server, timeout_seconds=300)
    sections = course_sections.chosen_sections(course, section_ids=[Section.objects.get(title="Der Init-Prozess").pk])
    run = generation.start_run(course, sections, 3, [Question.SINGLE, Question.TRUE_FALSE, Question.SHORT],
                               one_set=True)
    question_set = QuestionSet.objects.filter(parts__run=run).distinct().get()
    assert generation.generate(question_set.pk) in ("done", "failed")
    for part in question_set.parts.all():
        assert part.state in (GenerationPart.DONE, GenerationPart.FAILED) and part.error != "internal", part.detail
        print(f"SmolLM2 {part.section.title}: made {part.made} of {part.requested}, dropped {part.dropped} "
              f"{part.reasons}, {part.model_calls} model calls, {part.model_seconds:.1f} s model, "
              f"{part.seconds:.1f} s in all, {part.error}")
    for question in question_set.questions.all():
        assert items.form_problems(question) == [] and question.checks

    monkeypatch.setitem(items.TOKENS_PER_QUESTION, Question.SINGLE, 12)  # cut off mid-question
    monkeypatch.setattr(generation, "ANSWER_SPARE_TOKENS", 0)
    short = generation.start_run(course, sections[:1], 1, [Question.SINGLE], one_set=True)
    cut = QuestionSet.objects.filter(parts__run=short).distinct().get()
    assert generation.generate(cut.pk) in ("done", "failed")
    part = cut.parts.get()
    assert part.state in (GenerationPart.DONE, GenerationPart.FAILED) and part.error != "internal", part.detail
    print(f"SmolLM2 cut off: {part.state} {part.error} {part.detail!r}, made {part.made}")
