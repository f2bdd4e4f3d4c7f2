"""Per-person question budgets of a course's chat: so many questions a day and a week (the installation's
CHAT_QUOTA_DAY/CHAT_QUOTA_WEEK, or the course's own, set by an admin), beside the per-minute rate limit. The chat
page shows what is left before it runs out; a question over the budget is refused with when it renews."""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from tutor.models import Message, TutorConfig


@dataclass
class Budget:
    """One period's budget for a person in a course: its limit (0: none) and the questions asked in it."""

    period: str  # "day" or "week"
    limit: int
    used: int

    @property
    def left(self):
        """Questions left in the period (None: no limit)."""
        return None if not self.limit else max(self.limit - self.used, 0)


def limits(config):
    """(per day, per week) for the course: its own where an admin set one, else the installation's."""
    day = config.quota_day if config.quota_day is not None else settings.CHAT_QUOTA_DAY
    week = config.quota_week if config.quota_week is not None else settings.CHAT_QUOTA_WEEK
    return day, week


def period_starts(now=None):
    """(start of today, start of this week on Monday), both at midnight in TIME_ZONE."""
    local = timezone.localtime(now or timezone.now())
    today = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return today, today - timedelta(days=today.weekday())


def budgets(course, user, now=None):
    """The person's day and week budgets in the course (only those with a limit)."""
    day, week = limits(TutorConfig.for_course(course))
    if not day and not week:
        return []
    today, monday = period_starts(now)
    asked = Message.objects.filter(role=Message.USER, conversation__course=course, conversation__user=user)
    found = []
    if day:
        found.append(Budget("day", day, asked.filter(created_at__gte=today).count()))
    if week:
        found.append(Budget("week", week, asked.filter(created_at__gte=monday).count()))
    return found


def refusal(course, user):
    """The person's message when the next question is over a budget, else None."""
    for budget in budgets(course, user):
        if budget.left == 0:
            if budget.period == "day":
                return _("You have asked the %(limit)d questions of today. You can ask again tomorrow.") % {
                    "limit": budget.limit}
            return _("You have asked the %(limit)d questions of this week. You can ask again on Monday.") % {
                "limit": budget.limit}
    return None


def summary(course, user):
    """What the chat page shows of the budgets, e.g. "12 questions left today, 40 this week", or ""."""
    left = {budget.period: budget.left for budget in budgets(course, user)}
    if not left:
        return ""
    parts = []
    if "day" in left:
        parts.append(ngettext("%(count)d question left today", "%(count)d questions left today", left["day"])
                     % {"count": left["day"]})
    if "week" in left:
        parts.append(ngettext("%(count)d question left this week", "%(count)d questions left this week",
                              left["week"]) % {"count": left["week"]})
    return "; ".join(parts)
