"""Create a one-time LTI Dynamic Registration link to paste into the LMS (Moodle: Manage tools › Tool URL)."""

from django.core.management.base import BaseCommand, CommandError

from lti.dynamic_registration import MAX_LINK_HOURS, new_registration_link


class Command(BaseCommand):
    """python manage.py registration_link [--allow-host moodle.example.edu] [--hours 24] [--note TEXT]"""

    help = ("Print a one-time registration link for an LMS. With --allow-host only that platform host may use it "
            "(it may be on an internal address) and its registration starts active; without, any public host may "
            "use it and the platform waits for an admin's activation.")

    def add_arguments(self, parser):
        parser.add_argument("--allow-host", default="", metavar="HOST",
                            help="the LMS host name, e.g. moodle.example.edu (no scheme, no port)")
        parser.add_argument("--hours", type=int, default=24, help=f"hours the link stays valid (1-{MAX_LINK_HOURS})")
        parser.add_argument("--note", default="", help="a note for the admin site (who, which LMS)")

    def handle(self, *args, allow_host, hours, note, **options):
        try:
            link, url = new_registration_link(allow_host, hours, note)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(url)
        host = link.allowed_host or "any public host (the platform then waits for activation in the admin site)"
        self.stderr.write(f"One-time registration link for {host}, valid until {link.expires_at:%Y-%m-%d %H:%M %Z}. "
                          "Paste it into the LMS as the tool URL (Moodle: Manage tools › Tool URL › "
                          "Add LTI Advantage). It is shown only now.")
