"""Print everything stored about one person as JSON (the right of access, GDPR Art. 15)."""

import json

from django.core.management.base import BaseCommand, CommandError

from config.privacy import UnknownPerson, export_user_data, find_user


class Command(BaseCommand):
    """python manage.py export_user_data <user id or username> > data.json
    python manage.py export_user_data --issuer https://moodle.example.edu --sub 42 > data.json"""

    help = "Print everything the tutor stores about one person as JSON (account, LMS identity, roles, chats, practice)."

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
        self.stdout.write(json.dumps(export_user_data(person.pk), ensure_ascii=False, indent=2))
