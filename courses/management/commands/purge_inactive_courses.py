"""List, or delete, courses nobody has launched for a number of days (after a course ends: the institution's
retention policy for course texts decides the number; docs/processing-record.md)."""

from django.core.management.base import BaseCommand, CommandError

from courses.privacy import delete_course, inactive_courses


class Command(BaseCommand):
    """python manage.py purge_inactive_courses --inactive-days 730 [--delete]"""

    help = ("List courses with no launch, role change or chat for --inactive-days days; with --delete, delete them "
            "with their texts, files, index, chats and question sets.")

    def add_arguments(self, parser):
        parser.add_argument("--inactive-days", type=int, required=True)
        parser.add_argument("--delete", action="store_true", help="delete them (without it: only list them)")

    def handle(self, *args, inactive_days, delete, **options):
        if inactive_days < 30:
            raise CommandError("--inactive-days must be at least 30 (a course between two terms is not over)")
        courses = inactive_courses(inactive_days)
        for course in courses:
            self.stdout.write(f"{course.pk}\t{course.title}\tlast used {course.last_seen:%Y-%m-%d}")
            if delete:
                delete_course(course)
        verb = "Deleted" if delete else "Would delete (add --delete)"
        self.stdout.write(f"{verb}: {len(courses)} course(s) unused for {inactive_days} days.")
