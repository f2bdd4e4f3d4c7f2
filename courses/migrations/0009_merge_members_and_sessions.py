"""Merge of two branches of the schema: the members' last launch and the sign-in sessions."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("courses", "0008_membership_last_launch"),
        ("courses", "0008_person_session"),
    ]
    operations = []
