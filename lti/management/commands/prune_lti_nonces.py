"""Delete used launch nonces older than a day (their id_tokens are expired anyway)."""

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Forget used LTI launch nonces older than a day."

    def handle(self, *args, **options):
        from lti.launch import prune_nonces

        self.stdout.write(f"pruned {prune_nonces()} used nonces")
