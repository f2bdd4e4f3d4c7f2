"""Jobs on the clock: what Celery beat runs every day (settings.CELERY_BEAT_SCHEDULE), and the record of each
job's last successful run that readiness and /metrics show.

Retention must never depend on someone using the product: beat runs as its own process in every way the product
runs (deploy/stack.py, deploy/compose.yaml, deploy/k8s/base/beat.yaml).
"""

import functools
import logging

log = logging.getLogger(__name__)

# job name -> Celery task name; each runs once a day at RETENTION_HOUR:RETENTION_MINUTE (settings.py). Names
# only: settings.py builds beat's schedule from them before any app is loaded. The tasks: purge_expired_data in
# config/tasks.py, prune_lti_nonces in lti/tasks.py, purge_inactive_courses in courses/tasks.py; they keep the
# names "config.tasks.*" they had when config/ defined them all (beat's stored schedule and queued messages of an
# earlier release use them; the route "config.tasks.*" sends them to the ingest workers).
JOBS = {
    "purge_expired_data": "config.tasks.purge_expired_data",
    "prune_lti_nonces": "config.tasks.prune_lti_nonces",
    "purge_inactive_courses": "config.tasks.purge_inactive_courses",
}


def beat_schedule(hour, minute):
    """Celery beat's schedule: every job of JOBS daily at hour:minute (the Celery app's time zone)."""
    from celery.schedules import crontab

    return {job: {"task": task, "schedule": crontab(hour=hour, minute=minute)} for job, task in JOBS.items()}


def recorded(job):
    """Decorate a job's function so each run records its start, and its success (with what it returns) or error."""
    def decorate(function):
        @functools.wraps(function)
        def run(*args, **kwargs):
            from django.db.models import F
            from django.utils import timezone

            from config.models import PeriodicRun

            PeriodicRun.objects.update_or_create(job=job, defaults={"last_started_at": timezone.now()})
            try:
                result = function(*args, **kwargs)
            except Exception as exc:
                PeriodicRun.objects.filter(job=job).update(last_error=f"{exc.__class__.__name__}: {exc}"[:2000])
                raise
            PeriodicRun.objects.filter(job=job).update(
                last_success_at=timezone.now(), successes=F("successes") + 1,
                last_result=result if isinstance(result, dict) else {"result": result}, last_error="")
            log.info("periodic job %s done: %s", job, result)
            return result
        return run
    return decorate


def last_runs():
    """{job: last success (datetime or None)} for every scheduled job, in JOBS order."""
    from config.models import PeriodicRun

    found = dict(PeriodicRun.objects.filter(job__in=JOBS).values_list("job", "last_success_at"))
    return {job: found.get(job) for job in JOBS}
