"""The contract: the running app (uvicorn on loopback, the test database) keeps the committed OpenAPI description
(docs/openapi.yaml). schemathesis generates requests for every operation from it, bounded in examples, and fails on
any 5xx, an undocumented status or content type, or a body that does not match its schema.

The requests come with a write token of a course whose objects exist (a text, a draft and a released question set,
an answered conversation); a path's course is always that course, its other ids mostly the real ones (else whatever
schemathesis draws: 404s). Requests of the negative and coverage phases (invalid ids, unsupported methods) come too. No Celery worker runs: what the API queues is purged after.
"""


import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from courses.models import ApiToken, Chunk, Document, Membership
from tests.support import INIT_TEXT, ROOT, make_course, make_member, make_released_set, web_server_process
from tutor.chat.models import Conversation, Message
from tutor.questions.models import Question, QuestionSet

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

schema = schemathesis.openapi.from_path(ROOT / "docs" / "openapi.yaml")
REAL = {}  # path parameter -> the id of a real object of this test (set by the fixture `objects`)


@schema.hook
def map_path_parameters(context, path_parameters):
    """The course is always the test's; other ids are the real ones unless schemathesis drew a multiple of 3 (a set
    to export: the released one)."""
    exporting = "/export/" in context.operation.path
    for name, value in (path_parameters or {}).items():
        if name == "course_id" or (name in REAL and isinstance(value, int) and value % 3):
            path_parameters[name] = REAL["released_set_id" if exporting and name == "set_id" else name]
    return path_parameters


@pytest.fixture(scope="module")
def contract_server(worker_env, tmp_path_factory):
    """The ASGI app under uvicorn with rate limits out of the way and short stream waits; its base URL."""
    env = dict(worker_env, API_RATE_LIMIT="100000/minute", CHAT_RATE_LIMIT="100000", CHAT_STREAM_TIMEOUT="2",
               EMBEDDING_MODEL="static", TUTOR_MEDIA_ROOT=str(tmp_path_factory.mktemp("contract-media")),
               INFERENCE_URL="http://127.0.0.1:9/v1")
    try:
        with web_server_process(env, tmp_path_factory.mktemp("contract") / "web.log") as (url, _port, _process):
            yield url
    finally:
        _purge_queues()


def _purge_queues():
    from config.celery import app

    with app.connection_for_write() as connection:
        for queue in ("default", "chat", "ingest", "generate"):
            connection.default_channel.queue_purge(queue)


@pytest.fixture
def objects(settings, tmp_path):
    """A course with a text, question sets and an answered conversation of the token's lecturer; the token."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.EMBEDDING_MODEL = "static"
    course = make_course(("systemstart.md", INIT_TEXT))
    lecturer, _ = make_member(course, Membership.INSTRUCTOR)
    draft = QuestionSet.objects.create(course=course, title="Entwurf", generation=QuestionSet.DONE)
    question = Question.objects.create(question_set=draft, position=1, stem="Welche PID hat init?",
                                       options=["0", "1"], correct_index=1)
    conversation = Conversation.objects.create(course=course, user=lecturer)
    Message.objects.create(conversation=conversation, role=Message.USER, text="Was ist init?")
    answer = Message.objects.create(conversation=conversation, role=Message.ASSISTANT, text="Der erste Prozess.")
    REAL.update(course_id=course.pk, document_id=Document.objects.get(course=course).pk,
                chunk_id=Chunk.objects.filter(course=course).first().pk,
                set_id=draft.pk, released_set_id=make_released_set(course).pk,
                question_id=question.pk, conversation_id=conversation.pk, message_id=answer.pk)
    _token, secret = ApiToken.issue(lecturer, name="contract", scope=ApiToken.WRITE, course=course)
    return {"Authorization": f"Bearer {secret}"}


@schema.parametrize()
@settings(max_examples=12, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_the_running_app_keeps_its_openapi_description(case, contract_server, objects):
    case.call_and_validate(base_url=contract_server, headers=objects, timeout=30,
                           checks=[not_a_server_error, status_code_conformance, content_type_conformance,
                                   response_schema_conformance])
