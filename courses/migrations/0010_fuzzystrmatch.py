"""fuzzystrmatch's levenshtein: a misspelt word of the course is not an unknown word (courses.vocabulary)."""

from django.contrib.postgres.operations import CreateExtension
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("courses", "0009_merge_members_and_sessions"),
    ]
    operations = [CreateExtension("fuzzystrmatch")]
