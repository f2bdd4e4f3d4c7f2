"""Create an admin's API token (every course, or one) and print it once."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from courses.models import ApiToken, Course


class Command(BaseCommand):
    """python manage.py create_api_token --user ADMIN --name NAME [--course ID] [--scope read|write] [--days 90]"""

    help = ("Print a new API token of an admin (a staff user of the admin site): for every course, or for the one "
            "given. It acts as that admin, and is shown only now.")

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True, help="the admin's user name (a staff user)")
        parser.add_argument("--name", required=True, help="what the token is for, e.g. 'analytics'")
        parser.add_argument("--course", type=int, help="limit the token to this course id")
        parser.add_argument("--scope", choices=[ApiToken.READ, ApiToken.WRITE], default=ApiToken.READ)
        parser.add_argument("--days", type=int, default=90, help="days the token stays valid (1-3650)")

    def handle(self, *args, user, name, course, scope, days, **options):
        admin = get_user_model().objects.filter(username=user, is_staff=True, is_active=True).first()
        if admin is None:
            raise CommandError(f"{user!r} is not an active staff user (create one with createsuperuser)")
        if not 1 <= days <= 3650:
            raise CommandError("--days must be between 1 and 3650")
        limited = None
        if course is not None:
            limited = Course.objects.filter(pk=course).first()
            if limited is None:
                raise CommandError(f"there is no course {course}")
        token, secret = ApiToken.issue(admin, name=name, scope=scope, days=days, course=limited)
        self.stdout.write(secret)
        self.stderr.write(f"API token {token.hint}… ({scope}, {'course ' + str(course) if limited else 'every course'}"
                          f") valid until {token.expires_at:%Y-%m-%d %H:%M %Z}. It is shown only now.")
