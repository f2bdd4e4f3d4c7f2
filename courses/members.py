"""The course's people as its lecturers see them: role, last activity, and a name only where the LMS shares one.

Members come from launches and the roster sync (NRPS, lti.nrps); their names are stored only when Moodle shares
them (docs/moodle.md: *Privacy › Share launcher's name with tool*), otherwise the page names nobody. Last activity
is the latest of the person's launch into this course, question to its tutor and practice attempt in it.
"""

from dataclasses import dataclass
from datetime import datetime

from django.apps import apps
from django.db.models import Max, OuterRef, Subquery

from courses.models import Membership


@dataclass
class Member:
    """One row of the members page."""

    number: int  # a stable number within the page (by joining order), for members without a shared name
    name: str  # "" where the LMS shares no name
    role: str
    role_label: str
    is_teaching: bool
    last_activity: datetime | None


def _latest(model, course_field, user_field, time_field, course, **only):
    rows = model.objects.filter(**{course_field: course, user_field: OuterRef("user_id")}, **only)
    return Subquery(rows.order_by().values(user_field).annotate(at=Max(time_field)).values("at")[:1])


def course_members(course):
    """The course's members, teaching roles first, then by last activity (latest first); see Member."""
    message = apps.get_model("tutor", "Message")
    attempt = apps.get_model("tutor", "Attempt")
    link = apps.get_model("lti", "LtiUser")
    names = link.objects.filter(user=OuterRef("user_id")).exclude(name="").order_by("pk").values("name")[:1]
    memberships = (Membership.objects.filter(course=course)
                   .annotate(asked=_latest(message, "conversation__course", "conversation__user", "created_at",
                                           course, role="user"),
                             practised=_latest(attempt, "question_set__course", "user", "submitted_at", course),
                             shared_name=Subquery(names))
                   .order_by("pk"))
    rows = []
    for number, m in enumerate(memberships, start=1):
        times = [t for t in (m.last_launch_at, m.asked, m.practised) if t is not None]
        rows.append(Member(number=number, name=m.shared_name or "", role=m.role, role_label=m.get_role_display(),
                           is_teaching=m.is_teaching, last_activity=max(times) if times else None))
    rows.sort(key=lambda r: (not r.is_teaching, -(r.last_activity.timestamp() if r.last_activity else 0), r.number))
    return rows
