"""The tutor's API: chat over the real stack (uvicorn, Celery worker, Redis, the stub model), question sets from
generation (two kinds, what was made and dropped and why) through review, rewrite, grading and release to export and
item statistics, whole-text runs, the Moodle XML import, the settings with ETag/If-Match and the settings page's
rules, and usage."""

import json

import httpx
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.forms.models import model_to_dict
from django.utils import translation

from courses.models import ApiToken, Membership
from tests.support import (
    INIT_TEXT,
    QuestionModelStub,
    make_course,
    make_member,
    make_released_set,
    point_tutor_at,
    sse_events,
    wait_for,
)
from tests.test_tutor_exports import LECTURER_FILE
from tutor.chat.models import Conversation, Feedback, Message
from tutor.forms import TutorConfigForm
from tutor.models import TutorConfig
from tutor.questions import practice
from tutor.questions.models import Question, QuestionSet

COURSE_TEXTS = [("systemstart.md", INIT_TEXT)]  # for the course fixture (tests/support.py)
GOOD = [{"stem": "Welche Prozessnummer hat der Init-Prozess?", "options": ["0", "1", "42"], "answer": 1,
         "explanation": "Der Init-Prozess hat die PID 1.", "source": 1},
        {"stem": "Welches Init-System ist voreingestellt?", "options": ["SysV", "systemd"], "answer": 1,
         "explanation": "systemd ist voreingestellt.", "source": 1}]
DUPLICATE_OPTIONS = {"stem": "Welche Nummer hat der erste Prozess?", "options": ["eins", "Eins ", "zwei"], "answer": 0,
                     "explanation": "", "source": 1}  # dropped by the form check
STATEMENT = {"statement": "Der Benutzer startet den Init-Prozess von Hand.", "answer": False,
             "explanation": "Der Kernel startet ihn beim Systemstart.", "source": 1}


def lecturer_token(course, scope=ApiToken.WRITE):
    """A lecturer of the course and a course token of theirs: (user, Authorization header)."""
    user, _ = make_member(course, Membership.INSTRUCTOR)
    _token, secret = ApiToken.issue(user, name="Skript", scope=scope, course=course)
    return user, {"Authorization": f"Bearer {secret}"}


# --- Chat over the real stack -----------------------------------------------------------------------------

@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_token_asks_and_the_answer_streams_in_the_same_response(celery_worker, web_server, stub_llm, course):
    """As the chat page asks: accepted, the pieces, the final message; the conversation is the token user's."""
    user, auth = lecturer_token(course, ApiToken.READ)  # asking reads the tutor: a read token may
    point_tutor_at(course, stub_llm.url)
    stub_llm.reply = "Der Init-Prozess hat die **PID 1** [1]."
    stub_llm.token_delay = 0.1
    api = f"{web_server}/api/v1/courses/{course.pk}"

    events = sse_events(f"{api}/ask/", method="POST", json={"text": "Welche Prozessnummer hat init?"},
                        headers={**auth, "Accept": "text/event-stream"})
    names = [name for name, _ in events]
    assert names[0] == "accepted" and names[-1] == "final" and set(names[1:-1]) <= {"snapshot", "queue", "delta"}
    accepted, final = events[0][1], events[-1][1]
    assert accepted["stream_url"] == f"/api/v1/courses/{course.pk}/messages/{accepted['answer_id']}/stream/"
    assert "".join(data["text"] for name, data in events if name in ("snapshot", "delta")) == stub_llm.reply
    assert final["status"] == "done" and "<strong>PID 1</strong>" in final["html"]
    citation = final["citations"][0]
    assert citation["cited"] and "?" not in citation["url"]  # no credential in a link
    passage = httpx.get(f"{api}/passages/{citation['chunk']}/", headers=auth, timeout=10).json()
    assert "Prozessnummer 1" in passage["text"] and passage["document_title"] == "systemstart"

    conversation = Conversation.objects.get(course=course)
    assert conversation.user == user
    listed = httpx.get(f"{api}/conversations/", headers=auth, timeout=10).json()
    assert [c["id"] for c in listed["results"]] == [conversation.pk]
    detail = httpx.get(f"{api}/conversations/{conversation.pk}/", headers=auth, timeout=10).json()
    assert [m["role"] for m in detail["messages"]] == ["user", "assistant"]
    assert detail["messages"][1] == httpx.get(f"{api}/messages/{final['id']}/", headers=auth, timeout=10).json()
    again = sse_events(web_server + accepted["stream_url"], headers=auth)  # a finished answer: its final message
    assert [name for name, _ in again] == ["final"] and again[0][1]["html"] == final["html"]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_client_without_event_streams_gets_202_and_opens_the_stream(celery_worker, web_server, stub_llm, course):
    _, auth = lecturer_token(course)
    point_tutor_at(course, stub_llm.url)
    stub_llm.reply = "Mit apt install [1]."
    api = f"{web_server}/api/v1/courses/{course.pk}"
    accepted = httpx.post(f"{api}/ask/", json={"text": "Wie installiere ich Pakete?", "new": True}, headers=auth,
                          timeout=30)
    assert accepted.status_code == 202 and accepted.headers["content-type"] == "application/json"
    events = sse_events(web_server + accepted.json()["stream_url"], headers=auth)
    assert events[-1][0] == "final" and events[-1][1]["status"] == "done"
    follow_up = httpx.post(f"{api}/ask/", data={"text": "Und wo stehen die Quellen?",
                                                "conversation": accepted.json()["conversation_id"]},
                           headers=auth, timeout=30).json()
    assert follow_up["conversation_id"] == accepted.json()["conversation_id"]


@pytest.mark.django_db(transaction=True)
def test_chat_refusals_are_problems_with_the_chat_page_s_messages(client, course, settings, monkeypatch):
    monkeypatch.setattr("tutor.chat.tasks.chat_answer.delay", lambda *args: None)
    settings.CHAT_RATE_LIMIT = 1  # refused questions do not count
    user, auth = lecturer_token(course)
    headers = {"HTTP_AUTHORIZATION": auth["Authorization"]}
    url = f"/api/v1/courses/{course.pk}/ask/"
    empty = client.post(url, {"text": "  "}, content_type="application/json", **headers, HTTP_ACCEPT="text/event-stream")
    assert empty.status_code == 400 and empty["Content-Type"] == "application/problem+json"
    assert empty.json()["detail"] == "Please type a question."
    german = client.post(url, {"text": ""}, content_type="application/json", **headers, HTTP_ACCEPT_LANGUAGE="de")
    assert german.json()["detail"] == "Bitte geben Sie eine Frage ein."
    foreign = Conversation.objects.create(course=course, user=make_member(course)[0])
    stolen = client.post(url, {"text": "Hallo?", "conversation": foreign.pk}, content_type="application/json", **headers)
    assert stolen.status_code == 400 and stolen.json()["detail"] == "This conversation does not belong to you."
    assert client.post(url, {"text": "Eins?"}, content_type="application/json", **headers).status_code == 202
    limited = client.post(url, {"text": "Zwei?"}, content_type="application/json", **headers)
    assert limited.status_code == 429 and int(limited["Retry-After"]) == settings.CHAT_RATE_WINDOW
    assert limited.json()["detail"].startswith("You have asked a lot of questions")
    stranger_answer = Message.objects.create(conversation=foreign, role=Message.ASSISTANT, status=Message.DONE)
    for path in (f"messages/{stranger_answer.pk}/", f"messages/{stranger_answer.pk}/stream/"):
        assert client.get(f"/api/v1/courses/{course.pk}/{path}", **headers).status_code == 404  # not theirs


# --- Question sets -------------------------------------------------------------------------------------------

@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_question_set_from_generation_to_export(celery_worker, stub_llm, client, course):
    """Generate two kinds (queued), poll what was asked for, made and dropped (and why), read the items with their
    checks, review with If-Match, history, rewrite a wrong option, bulk review, grading rule, release, export as
    Moodle XML and GIFT, item statistics."""
    _, auth = lecturer_token(course)
    headers = {"HTTP_AUTHORIZATION": auth["Authorization"]}
    point_tutor_at(course, stub_llm.url, question_method=TutorConfig.WHOLE_PASSAGE)
    stub_llm.reply = QuestionModelStub([GOOD[0], DUPLICATE_OPTIONS, GOOD[1]], [STATEMENT])
    api = f"/api/v1/courses/{course.pk}"
    section = next(s for s in client.get(f"{api}/sections/", **headers).json()["results"]
                   if s["title"] == "Der Init-Prozess")
    refused = client.post(f"{api}/question-sets/", {"sections": [], "count": 3}, content_type="application/json",
                          **headers)
    assert refused.status_code == 400 and refused.json()["detail"] == "Please choose a section of the course texts."
    started = client.post(f"{api}/question-sets/", {"sections": [section["id"]], "count": 3, "title": "Init",
                                                    "kinds": ["truefalse", "multichoice"]},
                          content_type="application/json", **headers)
    assert started.status_code == 202 and started.json()["generation"] in ("queued", "running", "done")
    assert started.json()["kinds"] == ["multichoice", "truefalse"]
    assert started["Location"] == f"{api}/question-sets/{started.json()['id']}/"
    done = wait_for(lambda: (s := client.get(started["Location"], **headers).json())["generation"] == "done" and s)
    assert done["questions"] == 3 and done["approved"] == 0 and done["generation_label"] == "Generated", done
    assert (done["requested"], done["made"], done["dropped"], done["revising"]) == (3, 3, 1, 0)
    assert done["dropped_reasons"] and all(r["reason"].startswith("form:") and r["label"] and r["count"] == 1
                                           for r in done["dropped_reasons"])
    assert [(p["section"], p["state"], p["made"], p["dropped"]) for p in done["parts"]] == [(section["id"], "done",
                                                                                             3, 1)]

    items = client.get(f"{api}/question-sets/{done['id']}/questions/", **headers).json()["results"]
    assert [i["kind"] for i in items] == ["multichoice", "multichoice", "truefalse"]
    assert items[0]["content"] == {"options": ["0", "1", "42"], "correct_index": 1}
    assert items[2]["content"] == {"truth": False} and items[2]["stem"] == STATEMENT["statement"]
    checks = {c["check"]: c for c in items[0]["checks"]}
    assert checks["form"]["ok"] and checks["grounded"]["ok"] and checks["grounded"]["text"].startswith(
        "The cited passage supports the answer")
    assert checks["test_student"]["reason"] == "ok" and not checks["test_student"]["stale"]
    url = f"{api}/question-sets/{done['id']}/questions/{items[0]['id']}/"
    first = client.get(url, **headers)
    etag = first["ETag"]
    assert [h["action"] for h in first.json()["history"]] == ["generated"]
    edited = client.patch(url, {"stem": "Welche PID hat init?", "content": {"correct_index": 1}},
                          content_type="application/json", HTTP_IF_MATCH=etag, **headers)
    assert edited.status_code == 200 and edited.json()["stem"] == "Welche PID hat init?" and edited.json()["edited"]
    change = edited.json()["history"][0]
    assert (change["action"], change["label"]) == ("edited", "edited")
    assert change["changes"]["stem"] == ["Welche Prozessnummer hat der Init-Prozess?", "Welche PID hat init?"]
    assert {c["check"]: c["stale"] for c in edited.json()["checks"]}["test_student"]  # made before the edit
    stale = client.patch(url, {"review": "approved"}, content_type="application/json", HTTP_IF_MATCH=etag, **headers)
    assert stale.status_code == 412 and stale["Content-Type"] == "application/problem+json"
    assert Question.objects.get(pk=items[0]["id"]).review == Question.DRAFT  # the other lecturer's edit won
    invalid = client.patch(url, {"content": {"options": ["nur eine"]}}, content_type="application/json", **headers)
    assert invalid.status_code == 400 and invalid.json()["detail"].startswith("This question cannot be saved")
    truth = client.patch(f"{api}/question-sets/{done['id']}/questions/{items[2]['id']}/",
                         {"content": {"truth": True}}, content_type="application/json", **headers)
    assert truth.status_code == 200 and truth.json()["content"] == {"truth": True}
    approved = client.patch(url, {"review": "approved"}, content_type="application/json",
                            HTTP_IF_MATCH=edited["ETag"], **headers)
    assert approved.status_code == 200 and approved.json()["review"] == "approved"
    assert [h["action"] for h in approved.json()["history"]] == ["approved", "edited", "generated"]

    second = f"{api}/question-sets/{done['id']}/questions/{items[1]['id']}/"
    wrong = client.post(f"{second}rewrite/", {"part": "option:1"}, content_type="application/json", **headers)
    assert wrong.status_code == 400 and wrong.json()["detail"] == "A correct option is not rewritten: edit it yourself."
    rewrite = client.post(f"{second}rewrite/", {"part": "option:0"}, content_type="application/json", **headers)
    assert rewrite.status_code == 202 and rewrite.json()["revising"]
    rewritten = wait_for(lambda: not (q := client.get(second, **headers).json())["revising"] and q)
    assert rewritten["content"]["options"][0] == "Eine neue Antwort"
    assert rewritten["history"][0]["action"] == "regenerated"

    bulk = client.post(f"{api}/question-sets/{done['id']}/review/", {"questions": [items[1]["id"], items[2]["id"]],
                                                                     "review": "rejected"},
                       content_type="application/json", **headers)
    assert bulk.status_code == 200 and bulk.json() == {"changed": 2}
    rule = client.post(f"{api}/question-sets/{done['id']}/grading/", {"grading": "last", "attempts_allowed": 3},
                       content_type="application/json", **headers)
    assert rule.status_code == 200 and (rule.json()["grading"], rule.json()["attempts_allowed"]) == ("last", 3)
    no_rule = client.post(f"{api}/question-sets/{done['id']}/grading/", {"grading": "best", "attempts_allowed": 500},
                          content_type="application/json", **headers)
    assert no_rule.status_code == 400 and no_rule.json()["detail"].startswith("Please allow between 0")

    early = client.get(f"{api}/question-sets/{done['id']}/export/gift/", **headers)
    assert early.status_code == 409 and early.json()["detail"] == "Only a released set can be exported."
    released = client.post(f"{api}/question-sets/{done['id']}/release/", **headers).json()
    assert released["status"] == "released" and released["approved"] == 1
    xml = client.get(f"{api}/question-sets/{done['id']}/export/moodle-xml/", HTTP_ACCEPT="application/xml", **headers)
    assert xml.status_code == 200 and xml["Content-Type"].startswith("application/xml")
    assert b"Welche PID hat init?" in xml.content and b"Welches Init-System" not in xml.content
    gift = client.get(f"{api}/question-sets/{done['id']}/export/gift/", **headers)
    assert gift["Content-Disposition"] == 'attachment; filename="Init.gift.txt"' and "::01 Welche PID" in gift.content.decode()
    late = client.patch(url, {"review": "rejected"}, content_type="application/json", **headers)
    assert late.status_code == 400 and late.json()["detail"] == "A released set can no longer be changed."

    student, _ = make_member(course, Membership.LEARNER)
    practice.submit(QuestionSet.objects.get(pk=done["id"]), student, {str(items[0]["id"]): "0"})
    stats = client.get(f"{api}/question-sets/{done['id']}/statistics/", **headers).json()
    assert {k: stats[k] for k in ("attempts", "score", "maximum", "percent", "graded", "students")} == {
        "attempts": 1, "score": 0.0, "maximum": 1, "percent": 0, "graded": False, "students": 1}
    [item] = stats["items"]
    assert (item["question"], item["kind"], item["students"], item["difficulty"]) == (items[0]["id"], "multichoice",
                                                                                       1, 0.0)
    assert item["options"] == [{"label": "0", "share": 1.0, "correct": False},
                               {"label": "1", "share": 0.0, "correct": True},
                               {"label": "42", "share": 0.0, "correct": False}]
    assert item["flags"] == [{"code": "few", "text": "Too few students have answered it to judge."}]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_run_generates_a_set_per_section_and_says_when_nothing_is_missing(celery_worker, stub_llm, client, course):
    """A run over chosen sections (what the run's page polls): a set per section, progress per section, and
    'generate what is missing' refused when nothing is."""
    _, auth = lecturer_token(course)
    headers = {"HTTP_AUTHORIZATION": auth["Authorization"]}
    point_tutor_at(course, stub_llm.url, question_method=TutorConfig.WHOLE_PASSAGE)
    stub_llm.reply = QuestionModelStub([GOOD[0]])
    api = f"/api/v1/courses/{course.pk}"
    section = next(s for s in client.get(f"{api}/sections/", **headers).json()["results"]
                   if s["title"] == "Der Init-Prozess")
    refused = client.post(f"{api}/generation-runs/", {"per_section": 1}, content_type="application/json", **headers)
    assert refused.status_code == 400
    assert refused.json()["detail"] == "Please choose at least one section of the course texts."
    started = client.post(f"{api}/generation-runs/", {"sections": [section["id"]], "per_section": 1},
                          content_type="application/json", **headers)
    assert started.status_code == 202 and started.json()["sections"] == 1 and started.json()["per_section"] == 1
    run = wait_for(lambda: (r := client.get(started["Location"], **headers).json())["finished"] and r)
    assert (run["done"], run["failed"], run["requested"], run["made"], run["dropped"]) == (1, 0, 1, 1, 0)
    [part] = run["parts"]
    assert (part["section"], part["state"], part["state_label"], part["made"]) == (section["id"], "done",
                                                                                   "Generated", 1)
    question_set = client.get(f"{api}/question-sets/{part['question_set']}/", **headers).json()
    assert question_set["section"] == section["id"] and question_set["questions"] == 1
    again = client.post(f"{api}/generation-runs/{run['id']}/rerun/", **headers)
    assert again.status_code == 409 and again.json()["detail"].startswith("Nothing is missing")
    listed = client.get(f"{api}/generation-runs/", **headers).json()["results"]
    assert [r["id"] for r in listed] == [run["id"]]


@pytest.mark.django_db
def test_a_moodle_xml_file_is_imported_into_a_new_draft_set(client, course):
    """The Questions page's import over the API: usable questions as drafts with their checks and history, the
    unusable ones with their reason, other types counted; a file that is no Moodle XML leaves nothing behind."""
    _, auth = lecturer_token(course)
    headers = {"HTTP_AUTHORIZATION": auth["Authorization"]}
    api = f"/api/v1/courses/{course.pk}"
    response = client.post(f"{api}/question-sets/import/", {"file": SimpleUploadedFile("alt.xml", LECTURER_FILE)},
                           **headers)
    assert response.status_code == 201, response.content
    result = response.json()
    assert (result["imported"], result["skipped"]) == (3, {"numerical": 1})
    assert [u["stem"] for u in result["unusable"]] == ["Diese Frage hat keine richtige Antwort?"]
    assert result["unusable"][0]["reason"] == "Not exactly the declared number of correct answers."
    imported = result["question_set"]
    assert (imported["title"], imported["requested"], imported["questions"]) == ("Imported: alt.xml", 3, 3)
    items = client.get(f"{api}/question-sets/{imported['id']}/questions/", **headers).json()["results"]
    assert [(i["kind"], i["origin"], i["review"]) for i in items] == [("multichoice", "imported", "draft"),
                                                                      ("truefalse", "imported", "draft"),
                                                                      ("essay", "imported", "draft")]
    assert items[0]["content"] == {"options": ["Ein Init-System", "Ein Editor"], "correct_index": 0}
    assert items[2]["content"] == {"model_answer": "", "rubric": "Mindestens drei Schritte nennen."}
    assert {c["check"] for c in items[0]["checks"]} >= {"form", "duplicate"}
    question = client.get(f"{api}/question-sets/{imported['id']}/questions/{items[1]['id']}/", **headers).json()
    assert question["content"] == {"truth": False} and [h["action"] for h in question["history"]] == ["imported"]

    broken = client.post(f"{api}/question-sets/import/", {"file": SimpleUploadedFile("notizen.xml", b"kein XML")},
                         **headers)
    assert broken.status_code == 400 and broken.json()["detail"].startswith("This is not a readable XML file")
    assert QuestionSet.objects.filter(course=course).count() == 1  # the refused file's new set is gone
    released = make_released_set(course)
    late = client.post(f"{api}/question-sets/import/", {"file": SimpleUploadedFile("alt.xml", LECTURER_FILE),
                                                        "set": released.pk}, **headers)
    assert late.status_code == 400 and late.json()["detail"] == "A released set can no longer be changed."


# --- Settings and usage ---------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_settings_are_read_with_an_etag_and_changed_with_if_match_by_the_page_s_rules(client, course, settings):
    _, auth = lecturer_token(course)
    headers = {"HTTP_AUTHORIZATION": auth["Authorization"]}
    url = f"/api/v1/courses/{course.pk}/settings/"
    current = client.get(url, **headers)
    assert current.json()["sources"] == 4 and current["ETag"]
    changed = client.patch(url, {"sources": 6, "welcome_message": "Willkommen!"}, content_type="application/json",
                           HTTP_IF_MATCH=current["ETag"], **headers)
    assert changed.status_code == 200 and changed.json()["sources"] == 6 and changed["ETag"] != current["ETag"]
    assert changed.json()["answer_language"] == current.json()["answer_language"]  # untouched fields stay
    stale = client.patch(url, {"sources": 2}, content_type="application/json", HTTP_IF_MATCH=current["ETag"], **headers)
    assert stale.status_code == 412 and client.get(url, **headers).json()["sources"] == 6
    # the model server is the admin's (Django admin), not a lecturer's setting: over the API as on the page
    refused = client.patch(url, {"endpoint": "http://evil.example/v1"}, content_type="application/json", **headers)
    assert refused.status_code == 400 and set(refused.json()["errors"]) == {"endpoint"}
    invalid = client.patch(url, {"sources": 99}, content_type="application/json", HTTP_ACCEPT_LANGUAGE="de",
                           **headers)
    with translation.override("de"):  # the settings page's own message for the same value
        config = TutorConfig.objects.get(course=course)
        page_form = TutorConfigForm({**model_to_dict(config, TutorConfigForm._meta.fields), "sources": 99},
                                    instance=config)
        expected = page_form.errors["sources"]
    assert invalid.status_code == 400 and invalid.json()["errors"] == {"sources": expected}
    unknown = client.patch(url, {"colour": "blau"}, content_type="application/json", **headers)
    assert unknown.status_code == 400 and unknown.json()["errors"] == {"colour": ["This setting does not exist."]}


@pytest.mark.django_db
def test_usage_gives_the_lecturer_page_s_aggregates(client, course, settings):
    settings.USAGE_MIN_STUDENTS = 2
    _, auth = lecturer_token(course, ApiToken.READ)
    for text in ("Was macht der Kernel beim Systemstart?", "Startet der Kernel init?", "Was ist ein Dämon?"):
        conversation = Conversation.objects.create(course=course, user=make_member(course)[0])
        Message.objects.create(conversation=conversation, role=Message.USER, text=text)
        answer = Message.objects.create(conversation=conversation, role=Message.ASSISTANT, declined="Dämon" in text)
    Feedback.objects.create(message=answer, rating=Feedback.DOWN, comment="Nicht im Text")
    usage = client.get(f"/api/v1/courses/{course.pk}/usage/", HTTP_AUTHORIZATION=auth["Authorization"]).json()
    assert usage["questions"] == 3 and usage["unhelpful"] == 1 and usage["comments"] == ["Nicht im Text"]
    assert usage["per_day"][0]["questions"] == 3 and usage["min_students"] == 2
    assert usage["topics"] == [{"words": "kernel", "students": 2}]  # what one person wrote alone is not shown
    assert usage["declined_count"] == 1 and usage["declined"] == []
    assert "Dämon" not in json.dumps(usage, ensure_ascii=False)  # anonymised: no question's text


@pytest.mark.django_db
def test_question_sets_of_another_course_are_not_found(client, course):
    """Isolation in the query: a set of another course is not found under this course's URL."""
    other_set = QuestionSet.objects.create(course=make_course(title="Anderer Kurs"), title="Fremd")
    _, auth = lecturer_token(course)
    response = client.get(f"/api/v1/courses/{course.pk}/question-sets/{other_set.pk}/",
                          HTTP_AUTHORIZATION=auth["Authorization"])
    assert response.status_code == 404 and response.json()["detail"] == \
        "This question set does not exist in this course."
