"""The API's permission matrix: every endpoint × every kind of caller → the expected status.

Callers: nobody, a student, a lecturer of the course (by the session in the page's header and by the session cookie), a lecturer of another course,
the course's read and write tokens, an expired and a revoked token, an admin's token, and a token of another course.
Each endpoint is called on objects of the caller's own (an answer to retry is their own), so a refusal can only
come from the access rule (courses.access); another course's callers get 404: isolation is in the query, and course
ids are not disclosed.
"""

import uuid
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test.client import BOUNDARY, encode_multipart
from django.utils import timezone

from courses.access import READ, TEACH, WRITE
from courses.documents import add_document
from courses.models import ApiToken, Chunk, Course, Membership
from tests.support import INIT_TEXT, make_course, make_member, make_released_set
from tutor.chat.models import Conversation, Message
from tutor.questions.models import GenerationPart, GenerationRun, Question, QuestionSet

pytestmark = pytest.mark.django_db(transaction=True)  # the async endpoints (ask, stream) work on other threads

OK = "ok"


class World:
    """Course A (an indexed text) and course B; a member of each kind; the API tokens of course A and B and an admin's."""

    def __init__(self):
        self.course = make_course(("systemstart.md", INIT_TEXT))
        self.other = Course.objects.create(title="Anderer Kurs")
        self.student, self.student_token = make_member(self.course)
        self.lecturer, self.lecturer_token = make_member(self.course, Membership.INSTRUCTOR)
        self.stranger, self.stranger_token = make_member(self.other, Membership.INSTRUCTOR)
        admin = get_user_model().objects.create(username="admin", is_staff=True)
        self.secrets = {
            "read token": ApiToken.issue(self.lecturer, name="r", scope=ApiToken.READ, course=self.course)[1],
            "write token": ApiToken.issue(self.lecturer, name="w", scope=ApiToken.WRITE, course=self.course)[1],
            "admin token": ApiToken.issue(admin, name="a", scope=ApiToken.WRITE)[1],
            "other course's token": ApiToken.issue(self.stranger, name="o", scope=ApiToken.WRITE, course=self.other)[1],
        }
        expired, self.secrets["expired token"] = ApiToken.issue(self.lecturer, name="e", scope=ApiToken.WRITE,
                                                                course=self.course)
        ApiToken.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
        revoked, self.secrets["revoked token"] = ApiToken.issue(self.lecturer, name="x", scope=ApiToken.WRITE,
                                                                course=self.course)
        revoked.revoke()
        self.users = {"student": self.student, "lecturer": self.lecturer, "lecturer (session)": self.lecturer,
                      "lecturer of another course": self.stranger, "read token": self.lecturer,
                      "write token": self.lecturer, "admin token": admin, "other course's token": self.stranger,
                      "expired token": self.lecturer, "revoked token": self.lecturer, "nobody": None}

    def headers(self, client, who):
        """The request headers (or the session) that make the client this caller."""
        if who in self.secrets:
            return {"HTTP_AUTHORIZATION": f"Bearer {self.secrets[who]}"}
        if who == "lecturer (session)":
            client.force_login(self.lecturer)
            return {}
        token = {"student": self.student_token, "lecturer": self.lecturer_token,
                 "lecturer of another course": self.stranger_token}.get(who)
        return {"HTTP_X_TUTOR_SESSION": token} if token else {}


CALLERS = {  # who → the status for an endpoint of each level
    "nobody": {READ: 401, TEACH: 401, WRITE: 401},
    "student": {READ: OK, TEACH: 403, WRITE: 403},
    "lecturer": {READ: OK, TEACH: OK, WRITE: OK},
    "lecturer (session)": {READ: OK, TEACH: OK, WRITE: OK},
    "lecturer of another course": {READ: 404, TEACH: 404, WRITE: 404},
    "read token": {READ: OK, TEACH: OK, WRITE: 403},
    "write token": {READ: OK, TEACH: OK, WRITE: OK},
    "expired token": {READ: 401, TEACH: 401, WRITE: 401},
    "revoked token": {READ: 401, TEACH: 401, WRITE: 401},
    "admin token": {READ: OK, TEACH: OK, WRITE: OK},
    "other course's token": {READ: 404, TEACH: 404, WRITE: 404},
}


def _conversation(world, user, status=Message.DONE):
    conversation = Conversation.objects.create(course=world.course, user=user)
    Message.objects.create(conversation=conversation, role=Message.USER, text="Was ist der Init-Prozess?")
    answer = Message.objects.create(conversation=conversation, role=Message.ASSISTANT, status=status,
                                    text="Der erste Prozess." if status == Message.DONE else "",
                                    error="" if status == Message.DONE else "unavailable")
    return conversation, answer


def _document(world, user):
    """A document of its own for each call (one caller's delete leaves the next caller's in place)."""
    return add_document(world.course, f"notizen-{uuid.uuid4().hex}.md", f"# Notizen {uuid.uuid4()}\n".encode(),
                        enqueue=False)


def _draft_set(world, user, generation=QuestionSet.DONE):
    question_set = QuestionSet.objects.create(course=world.course, title="Entwurf", generation=generation)
    question_set.sections.set([w_section()])  # a failed set is generated again about its sections
    Question.objects.create(question_set=question_set, position=1, stem="Welche PID hat init?", options=["0", "1"],
                            correct_index=1, review=Question.APPROVED)
    return question_set


def _run(world, user):
    """A whole-text run whose one section failed (there is something to generate again)."""
    question_set = _draft_set(world, user, QuestionSet.FAILED)
    run = GenerationRun.objects.create(course=world.course, title="Systemstart", per_section=1)
    GenerationPart.objects.create(question_set=question_set, run=run, section_id=w_section(), requested=1,
                                  state=GenerationPart.FAILED, error="unavailable")
    return run


MOODLE_XML = b"""<?xml version="1.0" encoding="UTF-8"?><quiz><question type="truefalse"><name><text>1</text></name>
<questiontext format="html"><text>Der Kernel startet den Init-Prozess.</text></questiontext>
<answer fraction="100"><text>true</text></answer><answer fraction="0"><text>false</text></answer></question></quiz>"""


def _upload(name="neu.md", text="# Neu\n\nDienste startet systemd.\n"):
    return SimpleUploadedFile(name, text.encode(), content_type="text/markdown")


# (name, level, method, path under /api/v1/courses/{course}/ from the objects made for the caller, request options,
# the status of a success)
ENDPOINTS = [
    ("course", READ, "get", lambda w, u: "", {}, 200),
    ("search", READ, "get", lambda w, u: "search/?q=Init-Prozess", {}, 200),
    ("passage", READ, "get", lambda w, u: f"passages/{Chunk.objects.filter(course=w.course).first().pk}/", {}, 200),
    ("ask", READ, "post", lambda w, u: "ask/", {"data": {"text": "Was startet zuerst?"}, "content_type": "application/json"},
     202),
    ("conversations", READ, "get", lambda w, u: "conversations/", {}, 200),
    ("conversation", READ, "get", lambda w, u: f"conversations/{_conversation(w, u)[0].pk}/", {}, 200),
    ("message", READ, "get", lambda w, u: f"messages/{_conversation(w, u)[1].pk}/", {}, 200),
    ("answer stream", READ, "get", lambda w, u: f"messages/{_conversation(w, u)[1].pk}/stream/", {}, 200),
    ("retry", READ, "post", lambda w, u: f"messages/{_conversation(w, u, Message.FAILED)[1].pk}/retry/", {}, 202),
    ("documents", TEACH, "get", lambda w, u: "documents/", {}, 200),
    ("document", TEACH, "get", lambda w, u: f"documents/{_document(w, u).pk}/", {}, 200),
    ("settings", TEACH, "get", lambda w, u: "settings/", {}, 200),
    ("usage", TEACH, "get", lambda w, u: "usage/", {}, 200),
    ("sections", TEACH, "get", lambda w, u: "sections/", {}, 200),
    ("question sets", TEACH, "get", lambda w, u: "question-sets/", {}, 200),
    ("question set", TEACH, "get", lambda w, u: f"question-sets/{_draft_set(w, u).pk}/", {}, 200),
    ("questions", TEACH, "get", lambda w, u: f"question-sets/{_draft_set(w, u).pk}/questions/", {}, 200),
    ("question", TEACH, "get",
     lambda w, u: f"question-sets/{(s := _draft_set(w, u)).pk}/questions/{s.questions.get().pk}/", {}, 200),
    ("generation runs", TEACH, "get", lambda w, u: "generation-runs/", {}, 200),
    ("generation run", TEACH, "get", lambda w, u: f"generation-runs/{_run(w, u).pk}/", {}, 200),
    ("statistics", TEACH, "get", lambda w, u: f"question-sets/{make_released_set(w.course).pk}/statistics/", {}, 200),
    ("export xml", TEACH, "get", lambda w, u: f"question-sets/{make_released_set(w.course).pk}/export/moodle-xml/", {},
     200),
    ("export gift", TEACH, "get", lambda w, u: f"question-sets/{make_released_set(w.course).pk}/export/gift/", {}, 200),
    ("upload", WRITE, "post", lambda w, u: "documents/", {"data": lambda: {"file": _upload()}}, 201),
    ("replace", WRITE, "put", lambda w, u: f"documents/{_document(w, u).pk}/",
     {"data": lambda: {"file": _upload("ersatz.md")}, "multipart": True}, 200),
    ("delete", WRITE, "delete", lambda w, u: f"documents/{_document(w, u).pk}/", {}, 204),
    ("reindex", WRITE, "post", lambda w, u: f"documents/{_document(w, u).pk}/reindex/", {}, 202),
    ("change settings", WRITE, "patch", lambda w, u: "settings/",
     {"data": {"welcome_message": "Hallo!"}, "content_type": "application/json"}, 200),
    ("generate", WRITE, "post", lambda w, u: "question-sets/",
     {"data": lambda: {"sections": [w_section()], "count": 2}, "content_type": "application/json"}, 202),
    ("release", WRITE, "post", lambda w, u: f"question-sets/{_draft_set(w, u).pk}/release/", {}, 200),
    ("retry generation", WRITE, "post",
     lambda w, u: f"question-sets/{_draft_set(w, u, QuestionSet.FAILED).pk}/retry/", {}, 202),
    ("review", WRITE, "patch",
     lambda w, u: f"question-sets/{(s := _draft_set(w, u)).pk}/questions/{s.questions.get().pk}/",
     {"data": {"review": "rejected"}, "content_type": "application/json"}, 200),
    ("bulk review", WRITE, "post", lambda w, u: f"question-sets/{_draft_set(w, u).pk}/review/",
     {"data": lambda: {"questions": list(Question.objects.values_list("pk", flat=True)), "review": "rejected"},
      "content_type": "application/json"}, 200),
    ("grading", WRITE, "post", lambda w, u: f"question-sets/{_draft_set(w, u).pk}/grading/",
     {"data": {"grading": "last", "attempts_allowed": 2}, "content_type": "application/json"}, 200),
    ("rewrite", WRITE, "post",
     lambda w, u: f"question-sets/{(s := _draft_set(w, u)).pk}/questions/{s.questions.get().pk}/rewrite/",
     {"data": {"part": "explanation"}, "content_type": "application/json"}, 202),
    ("import", WRITE, "post", lambda w, u: "question-sets/import/",
     {"data": lambda: {"file": SimpleUploadedFile("fragen.xml", MOODLE_XML, content_type="application/xml")}}, 201),
    ("start run", WRITE, "post", lambda w, u: "generation-runs/",
     {"data": lambda: {"sections": [w_section()], "per_section": 1}, "content_type": "application/json"}, 202),
    ("rerun", WRITE, "post", lambda w, u: f"generation-runs/{_run(w, u).pk}/rerun/", {}, 202),
]


def w_section():
    from courses.models import Section

    return Section.objects.filter(chunks__isnull=False).values_list("pk", flat=True).first()


@pytest.fixture
def quiet_queues(monkeypatch):
    """No task leaves the test: ingestion, answers and generations are queued by name only."""
    queued = []
    monkeypatch.setattr("courses.tasks.ingest_document.apply_async", lambda *a, **k: queued.append("ingest"))
    monkeypatch.setattr("tutor.chat.tasks.chat_answer.delay", lambda *a, **k: queued.append("chat"))
    monkeypatch.setattr("tutor.questions.tasks.generate_questions.delay", lambda *a, **k: queued.append("generate"))
    monkeypatch.setattr("tutor.questions.tasks.generate_question_part.delay", lambda *a, **k: queued.append("generate"))
    monkeypatch.setattr("tutor.questions.tasks.generate_revision.delay", lambda *a, **k: queued.append("generate"))
    return queued


def read_stream(response):
    """The whole body of a streaming response whose content is an async iterator (the SSE endpoints)."""
    async def collect():
        return b"".join([part async for part in response.streaming_content])

    return async_to_sync(collect)()


def call(client, world, who, method, path, options):
    """One request of this caller; its response."""
    client.logout()
    headers = world.headers(client, who)
    options = dict(options)
    multipart = options.pop("multipart", False)
    if callable(options.get("data")):
        options["data"] = options["data"]()
    if multipart:  # Django's client encodes a multipart body by itself for POST only
        options["data"] = encode_multipart(BOUNDARY, options["data"])
        options["content_type"] = f"multipart/form-data; boundary={BOUNDARY}"
    return getattr(client, method)(f"/api/v1/courses/{world.course.pk}/{path}", **options, **headers)


@pytest.fixture
def world(settings, tmp_path):
    """The World, its uploads in a temporary folder, indexed with the fast static embeddings."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.EMBEDDING_MODEL = "static"
    settings.API_RATE_LIMIT = "10000/minute"
    return World()


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e[0] for e in ENDPOINTS])
def test_every_caller_gets_the_expected_status(client, world, quiet_queues, endpoint):
    name, level, method, path, options, success = endpoint
    got, wanted = {}, {}
    for who, statuses in CALLERS.items():
        target = path(world, world.users[who] or world.lecturer)
        response = call(client, world, who, method, target, options)
        if response.streaming:
            assert b"event: final" in read_stream(response)
        expected = success if statuses[level] == OK else statuses[level]
        got[who], wanted[who] = response.status_code, expected
        if response.status_code >= 400:
            assert response["Content-Type"] == "application/problem+json", (who, response.content)
        if expected == 401:
            assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert got == wanted
