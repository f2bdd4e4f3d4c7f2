"""Check the configured database, Redis and inference server; one clear line for each problem."""

from django.core.management.base import BaseCommand, CommandError

from config.health import run_checks


class Command(BaseCommand):
    help = "Check that the configured database, Redis and inference server are reachable."

    def add_arguments(self, parser):
        parser.add_argument("--skip", action="append", default=[], help="a check to skip (e.g. inference)")

    def handle(self, *args, skip, **options):
        names = [name for name in ("database", "redis", "inference") if name not in skip]
        failed = []
        for name, result in run_checks(names).items():
            if result["ok"]:
                self.stdout.write(f"ok    {name}: {result['detail']}")
            else:
                failed.append(name)
                self.stderr.write(f"FAIL  {name}: {result['detail']}")
        if failed:
            raise CommandError(f"cannot start: {', '.join(failed)} unreachable or misconfigured (see above)")
