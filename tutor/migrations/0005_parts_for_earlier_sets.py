# Sets made before generation parts existed get one part per section (separate from 0004: its rows must not be
# written in the transaction that still creates 0004's indexes).

from django.db import migrations


def parts_for_existing_sets(apps, schema_editor):
    """Sets made before parts existed get one part per section (state and counts from the set), and the kind
    they were generated as (single-answer multiple choice)."""
    QuestionSet = apps.get_model("tutor", "QuestionSet")
    GenerationPart = apps.get_model("tutor", "GenerationPart")
    Question = apps.get_model("tutor", "Question")
    states = {"idle": "failed", "queued": "queued", "running": "running", "done": "done", "failed": "failed"}
    for question_set in QuestionSet.objects.all():
        question_set.kinds = ["multichoice"]
        question_set.save(update_fields=["kinds"])
        sections = list(question_set.sections.order_by("order"))
        for number, section in enumerate(sections):
            share = question_set.requested // len(sections) + (number < question_set.requested % len(sections))
            made = Question.objects.filter(question_set=question_set, source_section=section)
            part = GenerationPart.objects.create(
                question_set=question_set, section=section, requested=share, state=states[question_set.generation],
                error=question_set.generation_error, detail=question_set.generation_detail, made=made.count(),
                changed_at=question_set.generation_changed_at or question_set.created_at)
            made.update(part=part)


class Migration(migrations.Migration):

    dependencies = [("tutor", "0004_reading_comprehension_items")]

    operations = [migrations.RunPython(parts_for_existing_sets, migrations.RunPython.noop)]
