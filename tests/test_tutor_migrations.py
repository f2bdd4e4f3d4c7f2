"""Migration 0003: a question set's line item (lti_context, line_item_url) moves to lti.LtiLineItem, and back."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("tutor", "0002_question_sets"), ("lti", "0002_ltilineitem")]
AFTER = [("tutor", "0003_line_items_to_lti")]


def migrate(targets):
    """Migrate the test database to these nodes; the historical models there."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_a_question_set_s_line_item_moves_to_lti_and_back():
    old = migrate(BEFORE)
    try:
        course = old.get_model("courses", "Course").objects.create(title="Kurs")
        registration = old.get_model("lti", "Registration").objects.create(
            issuer="https://lms.example", client_id="c", auth_login_url="https://lms.example/auth",
            key_set_url="https://lms.example/jwks")
        deployment = old.get_model("lti", "Deployment").objects.create(registration=registration, deployment_id="1")
        context = old.get_model("lti", "LtiContext").objects.create(registration=registration, deployment=deployment,
                                                                    context_id="k", course=course)
        QuestionSet = old.get_model("tutor", "QuestionSet")
        placed = QuestionSet.objects.create(course=course, title="Platziert", graded=True, lti_context=context,
                                            line_item_url="https://lms.example/lineitems/k/1")
        QuestionSet.objects.create(course=course, title="Nie platziert")
        orphan = QuestionSet.objects.create(course=course, title="Kontext weg", line_item_url="https://lms.example/x")

        new = migrate(AFTER)
        [item] = new.get_model("lti", "LtiLineItem").objects.all()
        assert (item.context_id, item.resource_id, item.url) == (
            context.pk, f"tutor-question-set-{placed.pk}", "https://lms.example/lineitems/k/1")
        assert not [f.name for f in new.get_model("tutor", "QuestionSet")._meta.fields if "line_item" in f.name]

        back = migrate(BEFORE)
        restored = back.get_model("tutor", "QuestionSet").objects.get(pk=placed.pk)
        assert (restored.lti_context_id, restored.line_item_url) == (context.pk, "https://lms.example/lineitems/k/1")
        assert back.get_model("tutor", "QuestionSet").objects.get(pk=orphan.pk).line_item_url == ""
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
