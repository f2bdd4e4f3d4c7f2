"""Per-person budgets of generated questions in a course: so many questions a day and a week that one person may
have the model write (the installation's GENERATION_QUOTA_DAY/GENERATION_QUOTA_WEEK, or the course's own, set by an
admin), counted when they are asked for (a GenerationRequest). The Questions page shows what is left before it runs
out; a request over the budget is refused, saying when it renews, and nothing of it is stored or queued.
Generating again what a request still misses is not counted again. The periods are the chat's (tutor.chat.quotas)."""

import logging
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from config.errors import ProblemError
from tutor.chat.quotas import Budget, period_starts
from tutor.models import TutorConfig
from tutor.questions.models import GenerationRequest

log = logging.getLogger(__name__)


class QuotaExceeded(ProblemError):
    """A request for more generated questions than the person's day or week budget in the course has left (the API
    answers 429 with Retry-After: the seconds until the budget renews)."""

    status = 429
    code = "quota"

    def __init__(self, message, renews_at):
        super().__init__(message)
        self.renews_at = renews_at

    @property
    def retry_after(self):
        """Seconds until the budget renews (midnight, or Monday's)."""
        return max(1, int((self.renews_at - timezone.now()).total_seconds()))


def limits(config):
    """(per day, per week) for the course: its own where an admin set one, else the installation's (0: none)."""
    day = config.generation_quota_day if config.generation_quota_day is not None else settings.GENERATION_QUOTA_DAY
    week = config.generation_quota_week if config.generation_quota_week is not None \
        else settings.GENERATION_QUOTA_WEEK
    return day, week


def budgets(course, user, now=None):
    """The person's day and week budgets of generated questions in the course (only those with a limit)."""
    day, week = limits(TutorConfig.for_course(course))
    if not (day or week) or user is None:
        return []
    today, monday = period_starts(now)
    asked = GenerationRequest.objects.filter(course=course, user=user)

    def used(since):
        return asked.filter(created_at__gte=since).aggregate(n=Sum("items"))["n"] or 0

    return ([Budget("day", day, used(today))] if day else []) + ([Budget("week", week, used(monday))] if week else [])


def _refusal(budget, items, now):
    today, monday = period_starts(now)
    if budget.period == "day":
        renews = today + timedelta(days=1)
        if not budget.left:
            text = _("You have had the %(limit)d generated questions of today. You can generate more tomorrow.")
        else:
            text = _("You asked for %(items)d questions, but only %(left)d of today's %(limit)d generated questions "
                     "are left. Ask for fewer, or generate more tomorrow.")
    else:
        renews = monday + timedelta(days=7)
        if not budget.left:
            text = _("You have had the %(limit)d generated questions of this week. You can generate more on "
                     "Monday.")
        else:
            text = _("You asked for %(items)d questions, but only %(left)d of this week's %(limit)d generated "
                     "questions are left. Ask for fewer, or generate more on Monday.")
    return QuotaExceeded(text % {"limit": budget.limit, "left": budget.left, "items": items}, renews)


def spend(course, user, items):
    """Count `items` generated questions asked for by the person in the course; QuotaExceeded (nothing counted)
    when that is more than a budget has left. Call inside the transaction that queues them: it waits for the
    person's other requests, so two at once cannot both spend the last of a budget."""
    if user is None or items <= 0:
        return
    now = timezone.now()
    with transaction.atomic():
        if any(limits(TutorConfig.for_course(course))):
            get_user_model().objects.select_for_update().filter(pk=user.pk).first()  # one request at a time
            for budget in budgets(course, user, now):
                if items > budget.left:
                    log.info("generation budget (%s, %d) of user %s in course %s: refused %d questions",
                             budget.period, budget.limit, user.pk, course.pk, items)
                    raise _refusal(budget, items, now)
        GenerationRequest.objects.create(course=course, user=user, items=items, created_at=now)


def summary(course, user):
    """What the Questions page shows of the budgets, e.g. "12 generated questions left today; 40 this week", or ""."""
    left = {budget.period: budget.left for budget in budgets(course, user)}
    parts = []
    if "day" in left:
        parts.append(ngettext("%(count)d generated question left today", "%(count)d generated questions left today",
                              left["day"]) % {"count": left["day"]})
    if "week" in left:
        parts.append(ngettext("%(count)d generated question left this week",
                              "%(count)d generated questions left this week", left["week"]) % {"count": left["week"]})
    return "; ".join(parts)
