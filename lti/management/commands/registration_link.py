"""Create a one-time LTI Dynamic Registration link to paste into the LMS (Moodle: Manage tools › Tool URL)."""

from urllib.parse import urlparse

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from lti.dynamic_registration import MAX_LINK_HOURS, new_registration_link


def _site(host):
    """The registrable part of a host, roughly (what browsers call its site): the last two labels of a name."""
    host = (host or "").lower()
    if host.replace(".", "").isdigit() or ":" in host or "." not in host:
        return host
    return ".".join(host.split(".")[-2:])


class Command(BaseCommand):
    """python manage.py registration_link [--allow-host moodle.example.edu] [--public-url URL] [--hours 24]"""

    help = ("Print a one-time registration link for an LMS. With --allow-host only that platform host may use it "
            "(it may be on an internal address) and its registration starts active; without, any public host may "
            "use it and the platform waits for an admin's activation. The link is for the tool's address as the LMS "
            "reaches it: PUBLIC_URL, or --public-url.")

    def add_arguments(self, parser):
        parser.add_argument("--allow-host", default="", metavar="HOST",
                            help="the LMS host name, e.g. moodle.example.edu (no scheme, no port)")
        parser.add_argument("--public-url", default="", metavar="URL",
                            help="the tool's address as the LMS and its users reach it (default: PUBLIC_URL)")
        parser.add_argument("--hours", type=int, default=24, help=f"hours the link stays valid (1-{MAX_LINK_HOURS})")
        parser.add_argument("--note", default="", help="a note for the admin site (who, which LMS)")

    def handle(self, *args, allow_host, public_url, hours, note, **options):
        base = public_url.strip().rstrip("/")
        if base and (urlparse(base).scheme not in {"http", "https"} or not urlparse(base).netloc):
            raise CommandError(f"--public-url {public_url!r} is not an address: give e.g. https://tutor.example.edu")
        try:
            link, url = new_registration_link(allow_host, hours, note, base_url=base)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(url)
        host = link.allowed_host or "any public host (the platform then waits for activation in the admin site)"
        self.stderr.write(f"One-time registration link for {host}, valid until {link.expires_at:%Y-%m-%d %H:%M %Z}. "
                          "Paste it into the LMS as the tool URL (Moodle: Manage tools › Tool URL › "
                          "Add LTI Advantage). It is shown only now.")
        tool = base or settings.PUBLIC_URL
        if not base and settings.PUBLIC_URL_IS_DEFAULT:
            self.stderr.write(
                f"The link uses {tool}, the default PUBLIC_URL: the LMS and its users' browsers must reach the tool "
                "there. If they reach it at another address, set PUBLIC_URL (e.g. PUBLIC_URL=https://tutor.example.edu "
                "in deploy/tutor.env) or pass --public-url, and make a new link.")
        tool_host = urlparse(tool).hostname or ""
        if link.allowed_host and _site(link.allowed_host) != _site(tool_host):
            self.stderr.write(
                f"The LMS ({link.allowed_host}) and the tool ({tool_host}) are different sites for the browser: the "
                "tool runs in the LMS page as a third-party frame, on a partitioned cookie where the browser allows "
                "one (https, or a loopback host) and on single-use tickets where it allows none. To keep them on one "
                f"site, give the tool an address under the LMS's site, e.g. --public-url with the host "
                f"{link.allowed_host}.")
