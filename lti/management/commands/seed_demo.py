"""Create the demo course and the built-in test platform, once; re-running changes nothing."""

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the demo course (from the texts the repo ships) and the built-in LTI test platform."

    def handle(self, *args, **options):
        from courses.demo import ensure_demo_course
        from lti.demo import ensure_test_platform

        platform = ensure_test_platform()
        course = ensure_demo_course()
        self.stdout.write(f"demo course: {course} (platform {platform})")
