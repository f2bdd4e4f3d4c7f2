"""Erase one person's data (the right to erasure, GDPR Art. 17)."""

from django.core.management.base import BaseCommand, CommandError

from config.privacy import UnknownPerson, delete_user_data, find_user


class Command(BaseCommand):
    """python manage.py delete_user_data <user id or username>
    python manage.py delete_user_data --issuer https://moodle.example.edu --sub 42"""

    help = ("Delete one person: account, LMS identity, roles, conversations, practice attempts, sessions and the "
            "Redis copies of their answers. Grades already sent to the LMS stay in the LMS.")

    def add_arguments(self, parser):
        parser.add_argument("user", nargs="?", help="the account's numeric id or username")
        parser.add_argument("--issuer", help="the LMS's issuer (with --sub: find the person by their LMS identity)")
        parser.add_argument("--sub", help="the person's id in the LMS (the LTI subject)")

    def handle(self, *args, user=None, issuer=None, sub=None, **options):
        if not user and not (issuer and sub):
            raise CommandError("name the person: a user id or username, or --issuer and --sub")
        try:
            person = find_user(user, issuer=issuer, sub=sub)
        except UnknownPerson as exc:
            raise CommandError(str(exc)) from None
        counts = delete_user_data(person.pk)
        conversations, messages = counts.get("tutor.conversation", 0), counts.get("tutor.message", 0)
        self.stdout.write(f"Deleted {conversations} conversations with {messages} messages, and the account.")
        for table, count in sorted(counts.items()):
            self.stdout.write(f"  {table}: {count}")
