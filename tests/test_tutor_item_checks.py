"""The checks a question passes before a lecturer sees it (tutor.questions.items' form check,
tutor.questions.item_checks: grounded, near-duplicate, the test student), each with a stub model that writes the
failing question, through the real stack: the Celery worker on the generate queue, PostgreSQL with pgvector, and the
loopback stub inference server."""

import json
from pathlib import Path

import pytest

from courses.models import Chunk, Membership, Section
from tests.stub_llm import split_tokens
from tests.support import INIT_TEXT, QuestionModelStub, make_member, point_tutor_at, session_headers, wait_for
from tutor.models import TutorConfig
from tutor.questions import generation, item_checks, items
from tutor.questions.models import Question, QuestionSet

COURSE_TEXTS = [("systemstart.md", INIT_TEXT)]

PID = {"stem": "Welche Prozessnummer hat der Init-Prozess?", "options": ["0", "1", "42", "100"], "answer": 1,
       "explanation": "Der Init-Prozess hat die PID 1.", "source": 1}
SYSTEMD = {"stem": "Welches Init-System ist unter Debian voreingestellt?", "options": ["SysV", "systemd", "upstart"],
           "answer": 1, "explanation": "systemd ist voreingestellt.", "source": 1}
KERNEL = {"stem": "Wer startet den Init-Prozess beim Systemstart?", "options": ["Der Kernel", "Der Benutzer", "APT"],
          "answer": 0, "explanation": "Der Kernel startet ihn.", "source": 1}
PLACEHOLDER = {"stem": "stem", "options": ["option A", "option B", "option C"], "answer": 0, "explanation": "",
               "source": 1}


PASSAGE = Chunk(text=INIT_TEXT)


# --- The form check and the scoring, on questions alone --------------------------------------------------------

def _question(kind, item):
    question, problems = items.from_model_item(kind, item, passages=[PASSAGE])
    return question, [code for code, _detail in problems]


@pytest.mark.parametrize(("kind", "item", "problem"), [
    (Question.SINGLE, PLACEHOLDER, items.PLACEHOLDER),
    (Question.SINGLE, dict(PID, options=["0", "1", "Option C", "100"]), items.PLACEHOLDER),
    (Question.SINGLE, dict(PID, options=["Welche Prozessnummer hat der Init-Prozess?", "1", "2"]), items.COPIED),
    (Question.SINGLE, dict(PID, options=["1", " 1", "2"]), items.NOT_DISTINCT),
    (Question.SINGLE, dict(PID, options=["1"]), items.OPTIONS),
    (Question.SINGLE, dict(PID, answer=4), items.KEY),
    (Question.SINGLE, dict(PID, answer="1"), items.KEY),
    (Question.SINGLE, dict(PID, options=["1", "2", "die Prozessnummer, die der Kernel dem ersten Prozess gibt"]),
     items.LENGTHS),
    (Question.SINGLE, dict(PID, stem="PID?"), items.TOO_SHORT),
    (Question.SINGLE, dict(PID, stem="  "), items.EMPTY),
    (Question.SINGLE, "not an object", items.SCHEMA),
    (Question.MULTIPLE, {"stem": "Welche Aussagen über init stimmen?", "options": ["a1", "b2", "c3", "d4"],
                         "answers": [0], "explanation": "", "source": 1}, items.KEY),
    (Question.MULTIPLE, {"stem": "Welche Aussagen über init stimmen?", "options": ["a1", "b2", "c3"],
                         "answers": [0, 1, 2], "explanation": "", "source": 1}, items.KEY),
    (Question.MULTIPLE, {"stem": "Welche Aussagen über init stimmen?", "options": ["a1", "b2", "c3"],
                         "answers": [0, 0], "explanation": "", "source": 1}, items.KEY),
    (Question.TRUE_FALSE, {"statement": "Der Init-Prozess hat die PID 1.", "answer": "ja", "source": 1}, items.KEY),
    (Question.SHORT, {"stem": "Welche PID hat der Init-Prozess?", "answers": [], "source": 1}, items.ANSWERS),
    (Question.SHORT, {"stem": "Welche PID hat der Init-Prozess?", "answers": ["eins zwei drei vier fünf sechs sieben"],
                      "source": 1}, items.ANSWERS),
    (Question.OPEN, {"stem": "Erklären Sie, was der Init-Prozess tut.", "model_answer": "", "rubric": [],
                     "source": 1}, items.ANSWERS),
    (Question.OPEN, {"stem": "Erklären Sie, was der Init-Prozess tut.", "model_answer": "<model answer>",
                     "rubric": ["x"], "source": 1}, items.PLACEHOLDER),
])
def test_the_form_check_finds_each_problem(kind, item, problem):
    _question_, problems = _question(kind, item)
    assert problem in problems


@pytest.mark.parametrize(("kind", "item"), [
    (Question.SINGLE, PID),
    (Question.MULTIPLE, {"stem": "Welche Aussagen über den Init-Prozess stimmen?",
                         "options": ["Er hat die PID 1", "Der Kernel startet ihn", "Er ist ein Editor", "Er heißt apt"],
                         "answers": [0, 1], "explanation": "So steht es im Text.", "source": 1}),
    (Question.TRUE_FALSE, {"statement": "Der Init-Prozess hat die PID 1.", "answer": True, "explanation": "",
                           "source": 1}),
    (Question.SHORT, {"stem": "Welches Init-System ist unter Debian voreingestellt?", "answers": ["systemd"],
                      "explanation": "", "source": 1}),
    (Question.OPEN, {"stem": "Erklären Sie, was der Init-Prozess beim Systemstart tut.",
                     "model_answer": "Er wird vom Kernel als erster Prozess gestartet und startet die Dienste.",
                     "rubric": ["erster Prozess", "startet Dienste"], "source": 1}),
])
def test_a_good_question_of_every_kind_passes_the_form_check(kind, item):
    question, problems = _question(kind, item)
    assert problems == [] and question.kind == kind and question.source_chunk is PASSAGE


def test_scoring_of_every_kind():
    single = Question(kind=Question.SINGLE, options=["0", "1", "2"], correct_index=1)
    assert (items.credit(single, 1), items.credit(single, 0), items.credit(single, None)) == (1.0, 0.0, 0.0)
    multiple = Question(kind=Question.MULTIPLE, options=["a", "b", "c", "d"], correct_indices=[0, 1])
    assert items.credit(multiple, [0, 1]) == 1.0
    assert items.credit(multiple, [0]) == 0.5  # half the right ones, none wrong
    assert items.credit(multiple, [0, 2]) == 0.0  # one right (+0.5), one wrong (-0.5)
    assert items.credit(multiple, [0, 1, 2, 3]) == 0.0 and items.credit(multiple, []) == 0.0
    truth = Question(kind=Question.TRUE_FALSE, truth=False)
    assert (items.credit(truth, False), items.credit(truth, True), items.credit(truth, None)) == (1.0, 0.0, 0.0)
    assert items.credit(Question(kind=Question.OPEN), "Meine Antwort") is None
    assert items.read_response(multiple, ["1", "0", "1", "9", "x"]) == [0, 1]
    assert items.read_response(truth, ["false"]) is False and items.read_response(single, ["7"]) is None


def test_short_answers_ignore_spacing_and_case_unless_told_and_know_moodle_s_wildcard():
    question = Question(kind=Question.SHORT, accepted_answers=["systemd", "System V*"])
    assert items.accepts(question, "  SystemD. ") and items.accepts(question, "system v init")
    assert not items.accepts(question, "sysv") and not items.accepts(question, "")
    question.case_sensitive = True
    assert items.accepts(question, "systemd") and not items.accepts(question, "Systemd")
    literal = Question(kind=Question.SHORT, accepted_answers=["a\\*b"])
    assert items.accepts(literal, "a*b") and not items.accepts(literal, "axxb")


def test_support_counts_the_answer_s_own_content_words_in_the_passage():
    passage = INIT_TEXT.split("## Paketverwaltung")[0]
    assert item_checks.support("Der Kernel", "Wer startet den Init-Prozess?", passage) == 1.0
    assert item_checks.support("Die Windows-Registry", "Wer startet den Init-Prozess?", passage) == 0.0
    assert item_checks.support("Prozessnummern", "Welche Zahl?", passage) == 1.0  # German endings are forgiven


# --- Through the stack: each check with a stub model that writes the failing question -------------------------------

@pytest.fixture
def init_section(course):
    return Section.objects.get(document__course=course, title="Der Init-Prozess")


def generate_with(client, course, stub_llm, section, model, count=3, **config):
    """A lecturer asks for `count` questions about the section; the stub model answers; the finished set."""
    _, token = make_member(course, Membership.INSTRUCTOR)
    point_tutor_at(course, stub_llm.url, **{"question_method": TutorConfig.WHOLE_PASSAGE, **config})
    stub_llm.reply = model
    response = client.post(f"/c/{course.pk}/questions/", {"section": section.pk, "count": count}, headers=session_headers(token))
    assert response.status_code == 302
    started = QuestionSet.objects.filter(course=course).latest("created_at")
    done = wait_for(lambda: QuestionSet.objects.filter(
        pk=started.pk, generation__in=[QuestionSet.DONE, QuestionSet.FAILED]).first(), timeout=90)
    return done, client.get(f"/c/{course.pk}/questions/{done.pk}/", headers=session_headers(token)).content.decode()


def checks_of(question, name):
    return [c for c in question.checks if c["check"] == name]


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_a_placeholder_question_is_dropped_and_the_set_says_what_is_missing(celery_worker, stub_llm, client, course,
                                                                            init_section):
    """The issue's case: asked for 3, the model writes one question whose text is "stem": nothing is stored, and the
    set says it was asked for 3, made none, dropped one and why, and offers to generate what is missing."""
    question_set, page = generate_with(client, course, stub_llm, init_section, QuestionModelStub([PLACEHOLDER], []))
    assert question_set.generation == QuestionSet.FAILED and question_set.generation_error == "no_valid"
    assert question_set.questions.count() == 0
    [part] = question_set.parts.all()
    assert (part.requested, part.made, part.dropped) == (3, 0, 1)
    assert part.reasons == {"form:placeholder": 1} and part.dropped_items[0]["stem"] == "stem"
    assert part.rounds == 3  # asked again twice for what was dropped, then it stopped
    assert "asked for 3, made 0, dropped 1" in page and "Placeholder text instead of content." in page

    # A good question among placeholders: kept, and the set says 2 are missing and offers to make them.
    question_set, page = generate_with(client, course, stub_llm, init_section,
                                       QuestionModelStub([PLACEHOLDER, PID], [], []))
    assert question_set.generation == QuestionSet.DONE and question_set.questions.count() == 1
    assert "asked for 3, made 1, dropped 1" in page and "Generate what is missing" in page


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_a_wrong_key_is_flagged_unclear_by_the_test_student(celery_worker, stub_llm, client, course, init_section):
    wrong_key = dict(PID, answer=2)  # says "42"; the passage says 1
    model = QuestionModelStub([wrong_key, SYSTEMD], keys={PID["stem"]: "1"})
    question_set, page = generate_with(client, course, stub_llm, init_section, model, count=2)
    flagged, fine = question_set.questions.order_by("position")
    [student] = checks_of(flagged, item_checks.TEST_STUDENT)
    assert (student["ok"], student["reason"]) == (False, "unclear") and flagged.flagged
    assert checks_of(fine, item_checks.TEST_STUDENT)[0]["ok"] is True and not fine.flagged
    assert "Unclear or wrong key: the model did not find this answer with the passage." in page
    # with the passage: the options were shown shuffled, every try
    prompts = [r["body"]["messages"][-1]["content"] for r in stub_llm.requests
               if "<passage>" in r["body"]["messages"][-1]["content"]]
    assert prompts and all("Der Init-Prozess ist der erste Prozess" in p for p in prompts)


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_a_guessable_question_is_flagged_or_dropped_as_the_course_says(celery_worker, stub_llm, client, course,
                                                                       init_section):
    model = QuestionModelStub([SYSTEMD, KERNEL], guessable={SYSTEMD["stem"]})
    question_set, page = generate_with(client, course, stub_llm, init_section, model, count=2,
                                       question_test_tries=3)
    guessable = question_set.questions.get(stem=SYSTEMD["stem"])
    [student] = checks_of(guessable, item_checks.TEST_STUDENT)
    assert (student["ok"], student["reason"]) == (False, "guessable")
    assert student["params"]["guessed"] == 3 and student["params"]["guess_tries"] == 3
    assert "Guessable: the model answered right without the passage." in page

    # "drop": the guessable question is not stored, the model is asked again (a bounded number of times)
    Question.objects.all().delete()
    model = QuestionModelStub([SYSTEMD], guessable={SYSTEMD["stem"]})
    question_set, page = generate_with(client, course, stub_llm, init_section, model, count=1,
                                       question_test_student=TutorConfig.CHECK_DROP)
    assert question_set.generation == QuestionSet.FAILED and question_set.questions.count() == 0
    [part] = question_set.parts.all()
    assert model.calls["generate"] == generation.ROUNDS
    assert part.reasons == {"test_student:guessable": generation.ROUNDS} and part.made == 0
    assert "Guessable: the model answered right without the passage." in page


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_a_near_duplicate_of_a_course_question_is_dropped_and_replaced(celery_worker, stub_llm, client, course,
                                                                       init_section):
    first, _page = generate_with(client, course, stub_llm, init_section, QuestionModelStub([PID]), count=1)
    assert first.questions.count() == 1 and first.questions.get().embedding_model == "static"

    reworded = dict(PID, stem="Welche Prozessnummer hat der Init-Prozess eigentlich?")
    question_set, page = generate_with(client, course, stub_llm, init_section,
                                       QuestionModelStub([reworded], [KERNEL]), count=1)
    [part] = question_set.parts.all()
    assert part.reasons == {"duplicate": 1} and part.made == 1
    assert question_set.questions.get().stem == KERNEL["stem"]
    assert "Nearly the same as a question already in the course" in page and PID["stem"] in page
    assert "similarity None" not in page


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_an_answer_its_passage_does_not_support_is_flagged(celery_worker, stub_llm, client, course, init_section):
    unsupported = {"stem": "Wo legt Debian seine Konfiguration ab?",  # not near KERNEL for the static embedder
                   "options": ["In der Windows-Registry", "Im BIOS-Speicher", "Auf Lochkarten"], "answer": 0,
                   "explanation": "", "source": 1}
    no_source = dict(KERNEL, source=7)  # there is no passage 7: the one that supports it is found
    question_set, page = generate_with(client, course, stub_llm, init_section,
                                       QuestionModelStub([unsupported, no_source]), count=2,
                                       question_test_student=TutorConfig.CHECK_OFF)
    flagged = question_set.questions.get(stem=unsupported["stem"])
    moved = question_set.questions.get(stem=KERNEL["stem"])
    [grounded] = checks_of(flagged, item_checks.GROUNDED)
    assert (grounded["ok"], grounded["reason"]) == (False, "unsupported") and flagged.flagged
    [grounded] = checks_of(moved, item_checks.GROUNDED)
    assert (grounded["ok"], grounded["reason"]) == (True, "moved") and moved.source_chunk.section_id == init_section.pk
    assert checks_of(moved, item_checks.TEST_STUDENT)[0]["reason"] == "off"
    assert "The cited passage does not support the answer." in page
    assert not [r for r in stub_llm.requests if "answer" in json.dumps(r["body"].get("response_format", {}))
                and "questions" not in json.dumps(r["body"].get("response_format", {}))]  # no test student calls


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_an_answer_cut_off_at_the_token_limit_keeps_its_complete_questions(celery_worker, stub_llm, client, course,
                                                                           init_section):
    """finish_reason "length": the complete questions before the cut are checked and kept, the rest is missing."""
    long = [dict(q, explanation=q["explanation"] + " " + "Das steht so im Kurstext. " * 40)
            for q in (PID, SYSTEMD, KERNEL)]
    model = QuestionModelStub(long, [])
    question_set, _page = generate_with(client, course, stub_llm, init_section, model, count=2)
    asked = next(r["body"] for r in stub_llm.requests if "questions" in json.dumps(r["body"]["response_format"]))
    assert len(split_tokens(json.dumps({"questions": long}))) > asked["max_tokens"]  # the stub ends with "length"
    assert question_set.generation == QuestionSet.DONE
    assert 1 <= question_set.questions.count() <= 2
    assert question_set.questions.order_by("position").first().stem == PID["stem"]


# --- near-duplicates: a threshold per embedding model, calibrated on labelled pairs (issue 24 §3) ----------------

DUPLICATE_PAIRS = Path(__file__).resolve().parent / "data" / "question_duplicate_pairs.jsonl"


@pytest.mark.parametrize("model", sorted(item_checks.DUPLICATE_SIMILARITY))
def test_each_embedding_model_s_duplicate_threshold_is_what_its_labelled_pairs_call_for(model):
    """Duplicates (the same question reworded, the same answer) and questions on the same topic that are not
    duplicates: the model's threshold in the table is the one with the fewest errors on them."""
    from courses.embeddings import get_embedder

    pairs = [json.loads(line) for line in DUPLICATE_PAIRS.read_text().splitlines() if line.strip()]
    duplicates, others = sum(p["duplicate"] for p in pairs), sum(not p["duplicate"] for p in pairs)
    assert duplicates >= 20 and others >= 20
    threshold, false, missed = item_checks.calibrate(item_checks.pair_similarities(pairs, get_embedder(model)))
    print(f"{model}: threshold {threshold}: {false} of {others} same-topic questions taken for duplicates, "
          f"{missed} of {duplicates} duplicates missed")
    assert item_checks.DUPLICATE_SIMILARITY[model] == threshold
    assert false <= others // 5 and missed <= duplicates // 4  # what the table promises in README


@pytest.mark.django_db
def test_a_question_on_the_same_topic_is_not_taken_for_a_duplicate(settings):
    """The issue's pair under e5-small (the product's default model): "Welche der folgenden sind Grundzustände eines
    Prozesses?" is no duplicate of "Was ist ein Prozess?" (0.93, over the 0.92 of before); a rewording is one."""
    from courses.models import Course

    settings.EMBEDDING_MODEL, settings.QUESTION_DUPLICATE_SIMILARITY = "e5-small", 0.0
    course = Course.objects.create(title="Prozesse")
    question_set = QuestionSet.objects.create(course=course, title="Prozesse")
    existing = Question(question_set=question_set, position=1, kind=Question.SHORT, stem="Was ist ein Prozess?",
                        accepted_answers=["Ein Programm in Ausführung"], review=Question.APPROVED)
    states = Question(kind=Question.SHORT, stem="Welche der folgenden sind Grundzustände eines Prozesses?",
                      accepted_answers=["bereit, laufend, blockiert"])
    reworded = Question(kind=Question.SHORT, stem="Was versteht man unter einem Prozess?",
                        accepted_answers=["Ein laufendes Programm"])
    item_checks.embed([existing, states, reworded], course.pk)
    existing.save()
    assert existing.embedding_model == "e5-small"
    kept = item_checks.duplicate(states, course.pk)
    assert kept["ok"] is True, kept
    dropped = item_checks.duplicate(reworded, course.pk)
    assert dropped["ok"] is False and dropped["params"]["stem"] == "Was ist ein Prozess?", dropped
