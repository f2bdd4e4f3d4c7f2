"""Re-index the courses whose index was built by another embedding model than EMBEDDING_MODEL (after an upgrade
that changes it): queues one document per course; its ingestion starts the new index and queues the others."""

from django.conf import settings
from django.core.management.base import BaseCommand

from courses.models import Document, EmbeddingIndex


class Command(BaseCommand):
    """python manage.py reindex_courses [--dry-run]"""

    help = ("Queue the re-indexing of every course whose index was built with another embedding model than "
            "EMBEDDING_MODEL. Until a course's new index is built its chat finds no sources.")

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="only list the courses")

    def handle(self, *args, dry_run, **options):
        from courses.tasks import ingest_document

        stale = EmbeddingIndex.objects.filter(active=True).exclude(model=settings.EMBEDDING_MODEL)
        queued = 0
        for index in stale.select_related("course").order_by("course_id"):
            first = Document.objects.filter(course_id=index.course_id).order_by("pk").first()
            self.stdout.write(f"{index.course_id}\t{index.course.title}\t{index.model} -> {settings.EMBEDDING_MODEL}")
            if first is not None and not dry_run:
                ingest_document.delay(first.pk)
                queued += 1
        self.stdout.write(f"{'Would queue' if dry_run else 'Queued'} {queued if not dry_run else stale.count()} "
                          f"course(s) for re-indexing with {settings.EMBEDDING_MODEL}.")
