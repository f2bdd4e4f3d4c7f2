"""Rotate the tool's signing key; the old public key stays in the JWKS for LTI_KEY_GRACE_SECONDS."""

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create a new active tool key; the previous one stays published for the grace period."

    def handle(self, *args, **options):
        from lti.keys import rotate

        key = rotate()
        self.stdout.write(f"new active tool key: {key.kid}")
