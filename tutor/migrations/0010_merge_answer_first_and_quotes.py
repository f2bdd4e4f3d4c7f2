"""Merge migration: answer-first generation and AI feedback on open answers beside the quotes, the AI-use notice and
the chat quotas."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('tutor', '0008_answer_first_and_open_answer_feedback'),
        ('tutor', '0009_merge_quotes_and_notice'),
    ]

    operations = [
    ]
