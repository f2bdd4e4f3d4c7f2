"""Delete chat messages older than each course's retention days (run daily, e.g. from cron)."""

from django.core.management.base import BaseCommand

from tutor.chat.retention import purge_conversations


class Command(BaseCommand):
    """python manage.py purge_conversations"""

    help = "Delete chat messages older than each course's retention days (the chat workers also do this daily)."

    def handle(self, *args, **options):
        counts = purge_conversations()
        self.stdout.write(f"Deleted {counts['messages']} messages and {counts['conversations']} empty conversations.")
