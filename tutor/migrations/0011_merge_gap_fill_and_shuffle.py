"""Merge of two branches of the schema: gap-fill questions and the sets' option shuffling."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("tutor", "0010_gap_fill_questions"),
        ("tutor", "0010_questionset_shuffle_options"),
    ]
    operations = []
