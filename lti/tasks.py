"""Celery tasks of the LTI app (queue "lti", with the other calls to the LMS such as grade passback); they take IDs."""

import logging

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from config.periodic import recorded
from config.tasks import DAILY

log = logging.getLogger(__name__)


@shared_task(name="lti.tasks.sync_roster", acks_late=True, ignore_result=True, autoretry_for=(Exception,),
             retry_backoff=30, max_retries=3)
def sync_roster(lti_context_id):
    """Sync one course's roster from the LMS (NRPS, every page); idempotent."""
    from lti.nrps import sync_roster as run

    return run(lti_context_id)


def sync_roster_soon(lti_context):
    """Queue a roster sync of the context after a teacher's launch, at most once per LTI_ROSTER_SYNC_HOURS."""
    if not lti_context.memberships_url or settings.LTI_ROSTER_SYNC_HOURS <= 0:
        return False
    if not cache.add(f"lti:roster:{lti_context.pk}", 1, timeout=settings.LTI_ROSTER_SYNC_HOURS * 3600):
        return False
    transaction.on_commit(lambda: sync_roster.delay(lti_context.pk))
    log.info("lti: roster sync of course %s queued", lti_context.course_id)
    return True


def sync_roster_now(course):
    """Queue a roster sync of each of the course's LMS contexts that offers NRPS (a lecturer's "sync now"), on the
    "lti" queue; the number queued (0: the LMS has offered no roster service for this course yet)."""
    from lti.models import LtiContext

    contexts = list(LtiContext.objects.filter(course=course).exclude(memberships_url="").values_list("pk", flat=True))
    for pk in contexts:
        if settings.LTI_ROSTER_SYNC_HOURS > 0:  # counts as the day's sync after a teacher's launch
            cache.set(f"lti:roster:{pk}", 1, timeout=settings.LTI_ROSTER_SYNC_HOURS * 3600)
        transaction.on_commit(lambda pk=pk: sync_roster.delay(pk))
    log.info("lti: roster sync of course %s queued by a lecturer (%d contexts)", course.pk, len(contexts))
    return len(contexts)


def roster_synced_at(course):
    """When the course's roster was last synced from the LMS (the latest of its contexts), or None."""
    from django.db.models import Max

    from lti.models import LtiContext

    return LtiContext.objects.filter(course=course).aggregate(at=Max("roster_synced_at"))["at"]


# the name it had when config/ ran it: beat's schedule (config.periodic.JOBS) and earlier releases' messages use it
@shared_task(name="config.tasks.prune_lti_nonces", **DAILY)
@recorded("prune_lti_nonces")
def prune_lti_nonces():
    """Delete used LTI launch nonces older than a day (a replayed launch is refused by its exp long before); daily."""
    from lti.launch import prune_nonces

    return {"nonces": prune_nonces()}
