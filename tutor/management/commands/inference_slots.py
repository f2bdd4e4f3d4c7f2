"""Show or set how many requests each model server works on at once (tutor.inference.capacity), for every process."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from tutor.inference import capacity


class Command(BaseCommand):
    help = ("Without arguments: each configured model server's slots, requests holding one and requests waiting. "
            "With URL and SLOTS: set that server's slots for every worker at once (--batch: how many batch work may "
            "hold); --clear: back to the settings (INFERENCE_SLOTS).")

    def add_arguments(self, parser):
        parser.add_argument("url", nargs="?", help="the server's base URL, as in INFERENCE_URL")
        parser.add_argument("slots", nargs="?", type=int)
        parser.add_argument("--batch", type=int, default=None)
        parser.add_argument("--clear", action="store_true")

    def handle(self, *args, url=None, slots=None, batch=None, clear=False, **options):
        if url and clear:
            capacity.set_slots(url, None)
        elif url and slots is not None:
            if slots < 1:
                raise CommandError("SLOTS must be at least 1")
            capacity.set_slots(url, slots, batch)
        elif url:
            raise CommandError("give SLOTS, or --clear")
        for server in ([url] if url else settings.INFERENCE_URLS):
            slots_now, batch_now = capacity.current_slots(server)
            held, waiting = capacity.queue_length(server)
            self.stdout.write(f"{server}: {slots_now} slot(s), batch work at most {batch_now}; "
                              f"{held} held, {waiting} waiting")
