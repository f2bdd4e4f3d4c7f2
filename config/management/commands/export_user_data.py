"""Print everything stored about one person as JSON (the right of access, GDPR Art. 15)."""

import json

from config.management.person import PersonCommand
from config.privacy import export_user_data


class Command(PersonCommand):
    """python manage.py export_user_data <user id or username> > data.json
    python manage.py export_user_data --issuer https://moodle.example.edu --sub 42 > data.json"""

    help = "Print everything the tutor stores about one person as JSON (account, LMS identity, roles, chats, practice)."

    def handle(self, *args, **options):
        self.stdout.write(json.dumps(export_user_data(self.person(options).pk), ensure_ascii=False, indent=2))
