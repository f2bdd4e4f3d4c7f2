"""Merge of two branches of the schema: the answers' quotes and the AI-use notice with the chat quotas."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("tutor", "0007_answer_quotes"),
        ("tutor", "0008_chat_quotas"),
    ]
    operations = []
