"""The retention run (the workers run it daily): chats past their course's retention, expired sessions, used
launch nonces, stored files no document refers to."""

from django.core.management.base import BaseCommand

from config.privacy import purge_expired_data


class Command(BaseCommand):
    """python manage.py purge_expired_data"""

    help = ("Delete what is past its retention: chat messages (per course), expired sessions, used launch nonces, "
            "and stored files that no document refers to.")

    def handle(self, *args, **options):
        counts = purge_expired_data()
        self.stdout.write(", ".join(f"{count} {kind}" for kind, count in counts.items()) + " deleted.")
