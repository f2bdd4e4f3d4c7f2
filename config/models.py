"""Operational rows owned by the project itself."""

from django.db import models


class WorkerHeartbeat(models.Model):
    """A row a Celery worker writes to prove it reaches the database (readiness, tests)."""

    marker = models.CharField(max_length=100, unique=True)
    pid = models.IntegerField(null=True)
    seen_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"{self.marker} @ {self.seen_at:%Y-%m-%d %H:%M:%S}"
