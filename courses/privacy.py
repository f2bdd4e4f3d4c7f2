"""The courses app's part of a person's data and of retention, registered with config.privacy in
CoursesConfig.ready(): roles, API tokens and sign-in sessions (export; erasure: the account's deletion cascades),
stored files no document refers to any more (daily), and courses nobody used for long (purge_inactive_courses)."""

import logging
import time
from datetime import timedelta

from django.core.files.storage import default_storage
from django.db.models import DateTimeField, Max, OuterRef, Subquery
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from courses.models import ApiToken, Course, Document

log = logging.getLogger(__name__)

TABLES = {
    "courses.membership": "roles in courses (from launches and the roster sync)",
    "courses.apitoken": "API tokens the person made (name, course, scope, dates; only a digest of the secret): "
                        "deleted, so they stop working",
    "courses.personsession": "sign-in sessions after launches (when, until when): deleted, so the person is signed out",
}
ORPHAN_FILE_GRACE = timedelta(days=1)  # an upload's file is written just before its document row is committed


def export_person(user):
    """The person's roles in courses and the API tokens they made (never the secret)."""
    return {
        "memberships": [{"course_id": m.course_id, "course": m.course.title, "role": m.role,
                         "updated": m.updated_at.isoformat()}
                        for m in user.memberships.select_related("course").order_by("course_id")],
        "api_tokens": [{"name": t.name, "course_id": t.course_id, "scope": t.scope, "begins_with": t.hint,
                        "created": t.created_at.isoformat(), "expires": t.expires_at.isoformat(),
                        "revoked": t.revoked_at.isoformat() if t.revoked_at else None,
                        "last_used": t.last_used_at.isoformat() if t.last_used_at else None}
                       for t in ApiToken.objects.filter(user=user).order_by("created_at")],
    }


def purge_orphan_files(now=None):
    """Delete stored course files that no document refers to any more (left by a deleted course or document);
    files younger than a day are left alone (an upload in progress). Returns their names."""
    now = now or time.time()
    referenced = set(Document.objects.values_list("file", flat=True))
    removed = []
    for name in _stored_files("courses"):
        if name in referenced:
            continue
        if now - default_storage.get_modified_time(name).timestamp() < ORPHAN_FILE_GRACE.total_seconds():
            continue
        default_storage.delete(name)
        removed.append(name)
    if removed:
        log.info("deleted %d stored files that no document refers to", len(removed))
    return removed


def _stored_files(folder):
    if not default_storage.exists(folder):
        return
    directories, files = default_storage.listdir(folder)
    for name in files:
        yield f"{folder}/{name}"
    for directory in directories:
        yield from _stored_files(f"{folder}/{directory}")


def purge_files():
    """The daily retention run's part: stored files no document refers to."""
    return {"files": len(purge_orphan_files())}


def inactive_courses(days, now=None):
    """Courses nobody launched for `days` days (no role refreshed, no LTI context updated, no chat), oldest first.

    The LMS does not tell the tool when a course ends; the last launch is the sign that it did. One query: the
    latest change of each relation is a subquery on its own (course) index, not a Max() over their joined product."""

    def latest(relation):
        model = Course._meta.get_field(relation).related_model
        column = model._meta.get_field("course").attname
        rows = model.objects.filter(**{column: OuterRef("pk")}).order_by().values(column)
        return Coalesce(Subquery(rows.annotate(last=Max("updated_at")).values("last")[:1],
                                 output_field=DateTimeField()), "created_at")

    # the relations whose latest change is a sign of use: roles, LTI contexts (lti), chats (tutor); named by their
    # relation on Course, so this app imports neither
    cutoff = (now or timezone.now()) - timedelta(days=days)
    return list(Course.objects.annotate(last_seen=Greatest("created_at", latest("memberships"),
                                                           latest("lti_contexts"), latest("conversations")))
                .filter(last_seen__lt=cutoff).order_by("created_at"))


def delete_course(course):
    """Delete a course with everything in it (texts and their files, index, chats, question sets, roles)."""
    course_id, names = course.pk, list(Document.objects.filter(course=course).values_list("file", flat=True))
    course.delete()
    for name in names:
        if name and not Document.objects.filter(file=name).exists():
            default_storage.delete(name)
    log.info("deleted course %s (%s) with %d stored files", course_id, course.title, len(names))


def register():
    """Register the above with config.privacy (called from CoursesConfig.ready())."""
    from config import privacy

    privacy.register_person_data(TABLES, export=export_person)
    privacy.register_retention(purge_files)
