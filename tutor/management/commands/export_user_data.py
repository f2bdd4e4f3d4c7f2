"""Print one person's chat data as JSON (the right of access)."""

import json

from django.core.management.base import BaseCommand

from tutor.retention import export_user_data


class Command(BaseCommand):
    """python manage.py export_user_data <user_id> > data.json"""

    help = "Print everything the tutor stores about one person's chats as JSON."

    def add_arguments(self, parser):
        parser.add_argument("user_id", type=int)

    def handle(self, *args, user_id, **options):
        self.stdout.write(json.dumps(export_user_data(user_id), ensure_ascii=False, indent=2))
