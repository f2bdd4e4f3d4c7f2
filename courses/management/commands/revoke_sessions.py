"""manage.py revoke_sessions PERSON…: end every sign-in session of these people at once (all browsers, all courses)."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q

from courses.sessions import revoke_sessions


class Command(BaseCommand):
    """Revoke a person's sessions, named by username (the pseudonym) or by their LTI user id (sub) at a platform."""

    help = "End every session of the named people (username, or the LMS user id 'sub'); they must launch again."

    def add_arguments(self, parser):
        parser.add_argument("people", nargs="+", help="username (pseudonym) or LMS user id (sub)")

    def handle(self, *args, people, **options):
        users = get_user_model().objects.filter(Q(username__in=people) | Q(lti_links__sub__in=people)).distinct()
        if not users:
            raise CommandError(f"nobody found by these names: {', '.join(people)}")
        for user in users:
            count = revoke_sessions(user)
            self.stdout.write(f"{user.username}: {count} session(s) revoked")
