"""Feedback on open answers (tutor.questions.open_feedback) through the real stack: a student's essay answer, the feedback task
on the generate queue (Celery worker, PostgreSQL, the loopback stub model), the result page marked AI feedback in
German, the lecturer's page with the override, and the switch that lets open answers count toward the grade."""

import json

import pytest

from courses.models import Chunk, Membership
from tests.support import INIT_TEXT, make_member, point_tutor_at, session_headers, wait_for
from tests.test_tutor_llm import llama_server  # noqa: F401  (the real llama.cpp server fixture)
from tutor.questions import open_feedback
from tutor.questions.models import Attempt, OpenAnswerFeedback, Question, QuestionSet

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

COURSE_TEXTS = [("systemstart.md", INIT_TEXT)]
ANSWER = "Der Init-Prozess startet als erster Prozess."
RUBRIC = ["Er ist der erste Prozess, den der Kernel startet", "Er hat die PID 1", "Er startet die Dienste"]


def essay_set(course):
    """A released set with one multiple-choice and one open question about the Init section."""
    chunk = Chunk.objects.filter(course=course, section__title="Der Init-Prozess").select_related("section").first()
    question_set = QuestionSet.objects.create(course=course, title="Offen", status=QuestionSet.RELEASED)
    single = Question.objects.create(question_set=question_set, position=1, stem="Welche PID hat init?",
                                     options=["0", "1"], correct_index=1, review=Question.APPROVED)
    essay = Question.objects.create(
        question_set=question_set, position=2, kind=Question.OPEN, stem="Erklären Sie, was der Init-Prozess tut.",
        model_answer="Der Init-Prozess ist der erste Prozess, hat die PID 1 und startet die Dienste.",
        rubric="\n".join(RUBRIC), review=Question.APPROVED, source_chunk=chunk, source_section=chunk.section)
    return question_set, single, essay, chunk


class FeedbackModel:
    """Answers a feedback request from the rubric it was shown: the first point present, the others missing."""

    def __init__(self):
        self.prompts = []

    def __call__(self, body):
        properties = ((body.get("response_format") or {}).get("schema") or {}).get("properties", {})
        if "present" not in properties:
            return "Antwort [1]."
        prompt = body["messages"][-1]["content"]
        self.prompts.append(prompt)
        rubric = [line[2:] for line in prompt.split("<rubric>")[1].split("</rubric>")[0].strip().splitlines()]
        return json.dumps({"present": rubric[:1], "missing": rubric[1:],
                           "feedback": "Gut erklärt, dass er zuerst startet. Ergänzen Sie die PID und die Dienste."})


def test_essay_feedback_is_written_shown_overridden_and_graded_only_when_the_lecturer_says_so(
        celery_worker, stub_llm, client, course):
    point_tutor_at(course, stub_llm.url)
    model = FeedbackModel()
    stub_llm.reply = model
    question_set, single, essay, chunk = essay_set(course)
    learner, token = make_member(course)
    answered = client.post(f"/c/{course.pk}/practice/{question_set.pk}/", {
        f"q-{single.pk}": "1", f"q-{essay.pk}": ANSWER}, headers=session_headers(token))
    attempt = Attempt.objects.get(user=learner)
    assert (attempt.score, attempt.max_score) == (1.0, 1)  # the open answer is not scored

    feedback = wait_for(lambda: OpenAnswerFeedback.objects.filter(
        attempt=attempt, question=essay, state=OpenAnswerFeedback.DONE).first(), timeout=300, what="the feedback")
    assert feedback.present == RUBRIC[:1] and feedback.missing == RUBRIC[1:]
    assert feedback.ai_credit == round(1 / 3, 4) and "Ergänzen Sie" in feedback.ai_text
    [prompt] = model.prompts  # the answer, the rubric, the model answer and the passage, as data
    assert f"<answer>\n{ANSWER}\n</answer>" in prompt and "<passage>" in prompt and "Musterantwort" in prompt
    assert open_feedback.write_feedback(attempt.pk, essay.pk) == "skipped" and len(model.prompts) == 1  # idempotent
    attempt.refresh_from_db()
    assert (attempt.score, attempt.max_score, attempt.credits[str(essay.pk)]) == (1.0, 1, None)  # off by default

    page = client.get(answered["Location"].split("?")[0], HTTP_ACCEPT_LANGUAGE="de", headers=session_headers(token)).content.decode()
    assert "KI-Feedback" in page and "Ergänzen Sie die PID und die Dienste." in page
    assert "Was fehlt" in page and "Er hat die PID 1" in page and "Lesen Sie diese Stelle noch einmal" in page
    assert f"/{chunk.pk}/" in page.split("Lesen Sie diese Stelle noch einmal")[1][:300]  # the passage to reread

    _, teacher = make_member(course, Membership.INSTRUCTOR)
    url = f"/c/{course.pk}/questions/{question_set.pk}/open-answers/"
    page = client.get(f"{url}", headers=session_headers(teacher)).content.decode()
    assert ANSWER in page and "AI feedback" in page and "rubric share 0.33" in page
    client.post(url, {"feedback": feedback.pk, "text": "Nennen Sie auch die PID.", "credit": "0,5"}, headers=session_headers(teacher))
    page = client.get(answered["Location"].split("?")[0], headers=session_headers(token)).content.decode()
    assert "Feedback from your teacher" in page and "Nennen Sie auch die PID." in page and "AI feedback" not in page
    attempt.refresh_from_db()
    assert (attempt.score, attempt.max_score) == (1.0, 1)  # overridden, still not counted

    client.post(url, {"action": "counting", "counted": "1"}, headers=session_headers(teacher))
    attempt.refresh_from_db()
    assert (attempt.score, attempt.max_score, attempt.credits[str(essay.pk)]) == (1.5, 2, 0.5)
    assert "Counted toward your score: 0.5" in client.get(answered["Location"].split("?")[0], headers=session_headers(token)).content.decode()
    refused = client.post(url, {"feedback": feedback.pk, "text": "x", "credit": "7"}, follow=True, headers=session_headers(teacher))
    assert "The credit must be a number between 0 and 1." in refused.content.decode()
    client.post(url, {"feedback": feedback.pk, "text": "", "credit": ""}, headers=session_headers(teacher))  # the model's feedback again
    attempt.refresh_from_db()
    assert attempt.credits[str(essay.pk)] == round(1 / 3, 4)
    assert "AI feedback" in client.get(answered["Location"].split("?")[0], headers=session_headers(token)).content.decode()
    client.post(url, {"action": "counting"}, headers=session_headers(teacher))  # off again: out of the score
    attempt.refresh_from_db()
    assert (attempt.score, attempt.max_score, attempt.credits[str(essay.pk)]) == (1.0, 1, None)


def test_a_student_cannot_reach_the_lecturer_s_page_and_an_empty_answer_gets_no_feedback(client, course):
    question_set, single, essay, _chunk = essay_set(course)
    learner, token = make_member(course)
    assert client.get(f"/c/{course.pk}/questions/{question_set.pk}/open-answers/", headers=session_headers(token)).status_code == 403
    client.post(f"/c/{course.pk}/practice/{question_set.pk}/", {f"q-{single.pk}": "0", f"q-{essay.pk}": " "}, headers=session_headers(token))
    assert Attempt.objects.filter(user=learner).exists() and not OpenAnswerFeedback.objects.exists()


@pytest.mark.llm
def test_smollm2_s_feedback_on_an_open_answer_is_stored_only_when_a_student_can_read_it(llama_server,  # noqa: F811
                                                                                       course):
    """The real embedded model server (SmolLM2 through llama.cpp) asked for feedback on one open answer. What it
    wrote here once was '} ``` Ausgewachsenen Punkte: -' with the points "missing" and "feedback" (the schema's
    field names): no feedback a student should read, so such an answer ends as failed (bad_response), and a usable
    one is stored with the rubric's own lines as its points. Either way the set's score is untouched (open answers
    count only when the lecturer says so)."""
    from django.contrib.auth import get_user_model

    point_tutor_at(course, llama_server, timeout_seconds=300)
    question_set, _single, essay, _chunk = essay_set(course)
    learner = get_user_model().objects.create(username="lernende")
    attempt = Attempt.objects.create(question_set=question_set, user=learner, answers={str(essay.pk): ANSWER})
    OpenAnswerFeedback.objects.create(attempt=attempt, question=essay)
    outcome = open_feedback.write_feedback(attempt.pk, essay.pk)
    feedback = OpenAnswerFeedback.objects.get(attempt=attempt, question=essay)
    print(f"SmolLM2 feedback: {outcome} ({feedback.model_seconds:.1f} s) {feedback.ai_text!r}; present "
          f"{feedback.present}, missing {feedback.missing}, error {feedback.error!r}")
    assert feedback.model_seconds > 0
    if outcome == "failed":
        assert feedback.state == OpenAnswerFeedback.FAILED and feedback.error == "bad_response"
        assert not feedback.ai_text and not feedback.present and not feedback.missing
    else:
        assert outcome == "done" and feedback.state == OpenAnswerFeedback.DONE
        assert set(feedback.present) | set(feedback.missing) == set(RUBRIC)  # each rubric point, where it stands
        assert not feedback.ai_text or len(feedback.ai_text.split()) >= open_feedback.MIN_WORDS
    attempt.refresh_from_db()
    assert attempt.credits.get(str(essay.pk)) is None


def test_feedback_that_is_no_text_a_student_can_read_or_names_no_rubric_point_is_left_out():
    read = open_feedback._read
    assert read({"present": [], "missing": ["missing", "feedback"], "feedback": "} ``` Ausgewachsenen Punkte: -"},
                RUBRIC) == ([], [], "")
    present, missing, text = read({
        "present": ["Er ist der erste Prozess, den der Kernel startet."], "missing": ["hat die PID 1", "Er hat die PID 1"],
        "feedback": "Gut erklärt. Ergänzen Sie die PID des Prozesses."}, RUBRIC)
    assert present == [RUBRIC[0]] and missing == [RUBRIC[1]] and text.startswith("Gut erklärt")
    assert read({"present": [], "missing": [], "feedback": "Gut."}, RUBRIC)[2] == ""  # too short to be feedback


def test_a_point_the_model_calls_present_needs_its_words_in_the_answer():
    """Qwen2.5-Coder-1.5B called two of three points present in an answer about something else, and praised it."""
    held = open_feedback._held_to_the_answer
    assert held(RUBRIC[:2], [], "Die Antwort enthält beide Punkte.", "Er löscht temporäre Dateien.") == (
        [], RUBRIC[:2], "")  # the praise judged the answer wrongly: the points alone remain
    assert held(RUBRIC[:2], RUBRIC[2:], "Gut.", ANSWER) == ([RUBRIC[0]], [RUBRIC[1], RUBRIC[2]], "")
    assert held(RUBRIC[:1], RUBRIC[1:], "Gut erklärt.", ANSWER) == (RUBRIC[:1], RUBRIC[1:], "Gut erklärt.")
