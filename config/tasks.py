"""Celery tasks of the project itself: the daily retention run Celery beat schedules (config.periodic; the apps'
daily jobs are their own tasks, see config.periodic.JOBS). Queue "ingest" by route: the ingest workers have the
uploaded files."""

from celery import shared_task
from django.db import DatabaseError

from config.periodic import recorded

# the options of every daily job's task (the apps' too): a job must not be lost to a database that was briefly out
# of reach, so it is retried with growing pauses (each job is idempotent)
DAILY = {"acks_late": True, "ignore_result": True, "autoretry_for": (DatabaseError,), "retry_backoff": 5,
         "retry_backoff_max": 600, "max_retries": 8}


@shared_task(name="config.tasks.purge_expired_data", **DAILY)
@recorded("purge_expired_data")
def purge_expired_data():
    """The daily retention run (config.privacy.purge_expired_data): sessions, and what the apps registered (chats,
    nonces, orphaned files)."""
    from config.privacy import purge_expired_data as run

    return run()
