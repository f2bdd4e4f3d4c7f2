"""The Celery app: Redis broker, one queue each for chat, ingestion and question generation."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("tutor")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

from config import workers  # noqa: E402  (the workers' visibility heartbeat and task metrics)

workers.install(app)


@app.task(name="config.ping_database")
def ping_database(marker: str) -> int:
    """Write a row through the worker's own database connection; used by readiness and tests."""
    from config.models import WorkerHeartbeat

    beat, _ = WorkerHeartbeat.objects.update_or_create(marker=marker, defaults={"pid": os.getpid()})
    return beat.pk
