"""Erase one person's data (the right to erasure, GDPR Art. 17)."""

from config.management.person import PersonCommand
from config.privacy import delete_user_data


class Command(PersonCommand):
    """python manage.py delete_user_data <user id or username>
    python manage.py delete_user_data --issuer https://moodle.example.edu --sub 42"""

    help = ("Delete one person: account, LMS identity, roles, conversations, practice attempts, sessions and the "
            "Redis copies of their answers. Grades already sent to the LMS stay in the LMS.")

    def handle(self, *args, **options):
        counts = delete_user_data(self.person(options).pk)
        conversations, messages = counts.get("tutor.conversation", 0), counts.get("tutor.message", 0)
        self.stdout.write(f"Deleted {conversations} conversations with {messages} messages, and the account.")
        for table, count in sorted(counts.items()):
            self.stdout.write(f"  {table}: {count}")
