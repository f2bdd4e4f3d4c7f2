"""Celery tasks of the project itself: the daily jobs Celery beat schedules (config.periodic). Queue "ingest" by
route: the ingest workers have the uploaded files."""

from celery import shared_task
from django.conf import settings
from django.db import DatabaseError

from config.periodic import recorded

# a daily job must not be lost to a database that was briefly out of reach: retried, with growing pauses (each
# job is idempotent)
DAILY = {"acks_late": True, "ignore_result": True, "autoretry_for": (DatabaseError,), "retry_backoff": 5,
         "retry_backoff_max": 600, "max_retries": 8}


@shared_task(name="config.tasks.purge_expired_data", **DAILY)
@recorded("purge_expired_data")
def purge_expired_data():
    """The daily retention run (config.privacy.purge_expired_data): chats, sessions, nonces, orphaned files."""
    from config.privacy import purge_expired_data as run

    return run()


@shared_task(name="config.tasks.prune_lti_nonces", **DAILY)
@recorded("prune_lti_nonces")
def prune_lti_nonces():
    """Delete used LTI launch nonces older than a day (a replayed launch is refused by its exp long before)."""
    from lti.launch import prune_nonces

    return {"nonces": prune_nonces()}


@shared_task(name="config.tasks.purge_inactive_courses", **DAILY)
@recorded("purge_inactive_courses")
def purge_inactive_courses():
    """Delete courses nobody used for PURGE_INACTIVE_COURSES_DAYS days (0, the default: only count them)."""
    from config.privacy import delete_course, inactive_courses

    days = settings.PURGE_INACTIVE_COURSES_DAYS
    if days <= 0:
        return {"courses": 0, "off": True}
    courses = inactive_courses(days)
    for course in courses:
        delete_course(course)
    return {"courses": len(courses)}
