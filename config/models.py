"""Operational rows owned by the project itself."""

from django.db import models


class WorkerHeartbeat(models.Model):
    """A row a Celery worker writes to prove it reaches the database (readiness, tests)."""

    marker = models.CharField(max_length=100, unique=True)
    pid = models.IntegerField(null=True)
    seen_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"{self.marker} @ {self.seen_at:%Y-%m-%d %H:%M:%S}"


class PeriodicRun(models.Model):
    """The last start and last success of one scheduled job (Celery beat): readiness and /metrics show them, so a
    retention run that stopped happening is seen, not assumed."""

    job = models.CharField(max_length=100, unique=True)
    last_started_at = models.DateTimeField(null=True)
    last_success_at = models.DateTimeField(null=True)
    successes = models.PositiveIntegerField(default=0)
    last_result = models.JSONField(default=dict, blank=True)
    last_error = models.TextField(blank=True)

    def __str__(self):
        return f"{self.job}: last success {self.last_success_at or 'never'}"
