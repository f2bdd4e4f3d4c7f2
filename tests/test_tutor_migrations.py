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


@pytest.mark.django_db(transaction=True)
def test_sets_made_before_parts_get_a_part_per_section():
    """Migrations 0004 and 0005: a set generated before parts existed gets one per section (its number shared, its state and
    its questions theirs), and the kind it was generated as."""
    old = migrate([("tutor", "0003_line_items_to_lti")])
    try:
        course = old.get_model("courses", "Course").objects.create(title="Kurs")
        document = old.get_model("courses", "Document").objects.create(course=course, title="Text", file="x.md",
                                                                       filename="x.md", sha256="0", kind="md")
        Section = old.get_model("courses", "Section")
        first, second = (Section.objects.create(document=document, path=f"A › {n}", title=n, order=i)
                         for i, n in enumerate(["Eins", "Zwei"]))
        QuestionSet = old.get_model("tutor", "QuestionSet")
        done = QuestionSet.objects.create(course=course, title="Alt", requested=5, generation="done")
        done.sections.set([first, second])
        for position, section in enumerate([first, first, second], start=1):
            old.get_model("tutor", "Question").objects.create(question_set=done, position=position, stem="Frage?",
                                                              options=["a", "b"], correct_index=0,
                                                              source_section=section)
        failed = QuestionSet.objects.create(course=course, title="Kaputt", requested=2, generation="failed",
                                            generation_error="unavailable")
        failed.sections.set([second])

        new = migrate([("tutor", "0005_parts_for_earlier_sets")])
        Part = new.get_model("tutor", "GenerationPart")
        parts = {(p.question_set_id, p.section_id): p for p in Part.objects.all()}
        assert [(parts[(done.pk, s.pk)].requested, parts[(done.pk, s.pk)].made, parts[(done.pk, s.pk)].state)
                for s in (first, second)] == [(3, 2, "done"), (2, 1, "done")]
        assert (parts[(failed.pk, second.pk)].state, parts[(failed.pk, second.pk)].error) == ("failed", "unavailable")
        assert new.get_model("tutor", "QuestionSet").objects.get(pk=done.pk).kinds == ["multichoice"]
        assert new.get_model("tutor", "Question").objects.filter(part__isnull=False).count() == 3
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


TODAY = [("tutor", "0006_merge_answerability_and_questions")]  # the schema before tutor/ became three rooms


@pytest.mark.django_db(transaction=True)
def test_every_row_of_every_tutor_table_survives_the_upgrade_from_today_s_schema():
    """From the schema as it was when tutor/ became three rooms (chat, questions, inference), with rows in every
    tutor table, to the latest migration: each row is still there with the values it had (the fields of that
    schema)."""
    old = migrate(TODAY)
    try:
        model = lambda name: old.get_model("tutor", name)  # noqa: E731
        course = old.get_model("courses", "Course").objects.create(title="Kurs")
        user = old.get_model("auth", "User").objects.create(username="student")
        document = old.get_model("courses", "Document").objects.create(course=course, title="Text", file="x.md",
                                                                       filename="x.md", sha256="0", kind="md")
        section = old.get_model("courses", "Section").objects.create(document=document, path="A", title="A", order=0)
        model("TutorConfig").objects.create(course=course, system_prompt="Antworte kurz.")
        conversation = model("Conversation").objects.create(course=course, user=user)
        message = model("Message").objects.create(conversation=conversation, role="assistant", text="Antwort")
        model("Citation").objects.create(message=message, number=1, chunk_id=7, document_title="Text")
        model("Feedback").objects.create(message=message, rating=1, comment="gut")
        model("TestQuestion").objects.create(course=course, question="Was ist init?")
        run = model("GenerationRun").objects.create(course=course, title="Lauf", created_by=user)
        question_set = model("QuestionSet").objects.create(course=course, title="Satz", section=section,
                                                           created_by=user)
        question_set.sections.set([section])
        part = model("GenerationPart").objects.create(question_set=question_set, section=section, run=run)
        question = model("Question").objects.create(question_set=question_set, part=part, position=1,
                                                    stem="Frage?", options=["a", "b"], correct_index=0,
                                                    source_section=section)
        model("QuestionChange").objects.create(question=question, user=user, action="edit")
        model("Attempt").objects.create(question_set=question_set, user=user, answers={"1": 0}, score=1,
                                        max_score=1)
        tutor_models = list(old.get_app_config("tutor").get_models())
        assert len(tutor_models) == 12
        before = {m.__name__: (list(m.objects.order_by("pk").values(*[f.attname for f in m._meta.concrete_fields])),
                               [f.attname for f in m._meta.concrete_fields]) for m in tutor_models}
        assert all(rows for rows, _fields in before.values())
        through = list(model("QuestionSet").sections.through.objects.values_list("questionset_id", "section_id"))

        new = migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
        for name, (rows, fields) in before.items():
            assert list(new.get_model("tutor", name).objects.order_by("pk").values(*fields)) == rows, name
        assert list(new.get_model("tutor", "QuestionSet").sections.through.objects.values_list(
            "questionset_id", "section_id")) == through
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


@pytest.mark.django_db
def test_the_models_and_their_migrations_agree():
    """No model change lacks its migration (several branches each added migrations; their merges must add up)."""
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=out)
    except SystemExit as exc:
        raise AssertionError(f"models without migrations:\n{out.getvalue()}") from exc
