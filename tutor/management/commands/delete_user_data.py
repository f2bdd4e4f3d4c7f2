"""Delete one person's chat data (the right to erasure)."""

from django.core.management.base import BaseCommand

from tutor.retention import delete_user_data


class Command(BaseCommand):
    """python manage.py delete_user_data <user_id>"""

    help = "Delete every conversation of one person, with messages, sources and feedback."

    def add_arguments(self, parser):
        parser.add_argument("user_id", type=int)

    def handle(self, *args, user_id, **options):
        counts = delete_user_data(user_id)
        self.stdout.write(f"Deleted {counts['conversations']} conversations with {counts['messages']} messages.")
