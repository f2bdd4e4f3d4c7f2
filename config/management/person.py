"""The person a privacy command is about, named by account id or username, or by the LMS's issuer and subject."""

from django.core.management.base import BaseCommand, CommandError

from config.privacy import UnknownPerson, find_user


class PersonCommand(BaseCommand):
    """A management command about one person: `<user id or username>`, or `--issuer ISS --sub SUB`."""

    def add_arguments(self, parser):
        parser.add_argument("user", nargs="?", help="the account's numeric id or username")
        parser.add_argument("--issuer", help="the LMS's issuer (with --sub: find the person by their LMS identity)")
        parser.add_argument("--sub", help="the person's id in the LMS (the LTI subject)")

    def person(self, options):
        """The account the options name; a CommandError that says why when there is none."""
        user, issuer, sub = options.get("user"), options.get("issuer"), options.get("sub")
        if not user and not (issuer and sub):
            raise CommandError("name the person: a user id or username, or --issuer and --sub")
        try:
            return find_user(user, issuer=issuer, sub=sub)
        except UnknownPerson as exc:
            raise CommandError(str(exc)) from None
