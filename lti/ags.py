"""Assignment and Grade Services: find/create line items, post scores, read results; report a score of one of the
tool's resources (the service the tool's apps call for grade passback)."""

import json
import logging
from urllib.parse import urlencode, urlparse, urlunparse

import requests
from django.utils import timezone
from pylti1p3.exception import LtiException, LtiServiceException

from lti.models import LtiContext, LtiLineItem, LtiUser
from lti.services import CachedServiceConnector

log = logging.getLogger(__name__)

LINEITEM_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
RESULT_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly"
SCORE_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
LINEITEM = "application/vnd.ims.lis.v2.lineitem+json"
LINEITEMS = "application/vnd.ims.lis.v2.lineitemcontainer+json"
SCORE = "application/vnd.ims.lis.v1.score+json"
RESULTS = "application/vnd.ims.lis.v2.resultcontainer+json"
ACTIVITY = {"Initialized", "Started", "InProgress", "Submitted", "Completed"}
GRADING = {"FullyGraded", "Pending", "PendingManual", "Failed", "NotReady"}


def _sub_url(url, suffix, query=None):
    """url with /suffix added to its path (keeping its query), plus extra query parameters."""
    parts = urlparse(url)
    q = "&".join(p for p in [parts.query, urlencode(query or {})] if p)
    return urlunparse(parts._replace(path=parts.path.rstrip("/") + suffix, query=q))


def find_or_create_line_item(lti_context, resource_id, label, score_maximum, tag=""):
    """The context's line item for resource_id (created with label and maximum when missing)."""
    connector = CachedServiceConnector(lti_context.registration)
    url = _sub_url(lti_context.lineitems_url, "", {"resource_id": resource_id})
    found = connector.make_service_request([LINEITEM_SCOPE], url, accept=LINEITEMS)["body"] or []
    if found:
        return found[0]
    item = {"label": label, "scoreMaximum": score_maximum, "resourceId": resource_id}
    if tag:
        item["tag"] = tag
    return connector.make_service_request([LINEITEM_SCOPE], lti_context.lineitems_url, is_post=True, data=json.dumps(item),
                                          content_type=LINEITEM, accept=LINEITEM)["body"]


def post_score(lti_context, lineitem_url, user, score_given, score_maximum, *,
               activity_progress="Completed", grading_progress="FullyGraded", comment="", timestamp=None):
    """Send one person's score for a line item (the platform's user id is the launch's sub).

    ``timestamp`` (default: now) is when the score was reached; sending the same score again with the
    same timestamp changes nothing at the platform.
    """
    if activity_progress not in ACTIVITY or grading_progress not in GRADING:
        raise ValueError(f"bad progress {activity_progress!r}/{grading_progress!r}")
    sub = platform_sub(user, lti_context.registration)
    score = {"userId": sub, "scoreGiven": score_given, "scoreMaximum": score_maximum,
             "activityProgress": activity_progress, "gradingProgress": grading_progress,
             "timestamp": (timestamp or timezone.now()).isoformat()}
    if comment:
        score["comment"] = comment
    connector = CachedServiceConnector(lti_context.registration)
    return connector.make_service_request([SCORE_SCOPE], _sub_url(lineitem_url, "/scores"), is_post=True,
                                          data=json.dumps(score), content_type=SCORE)["body"]


def platform_sub(user, registration):
    """The platform's user id (sub) of a person: the same under every registration of that platform (issuer),
    so any of their links will do. LtiUser.DoesNotExist if the person never came from there."""
    sub = LtiUser.objects.filter(user=user, registration__issuer=registration.issuer).values_list(
        "sub", flat=True).first()
    if sub is None:
        raise LtiUser.DoesNotExist(f"user {user.pk} has no LTI link to {registration.issuer}")
    return sub


def read_results(lti_context, lineitem_url):
    """The platform's results for a line item (list of dicts with userId, resultScore, resultMaximum)."""
    connector = CachedServiceConnector(lti_context.registration)
    return connector.make_service_request([RESULT_SCOPE], _sub_url(lineitem_url, "/results"),
                                          accept=RESULTS)["body"] or []


class ScoreNotSent(Exception):
    """A score the platform did not take; ``final`` when trying again cannot help (no context, no service)."""

    def __init__(self, reason, *, final=False):
        super().__init__(reason)
        self.reason, self.final = reason, final


def can_report(user):
    """Whether the person came from a platform (scores can be reported for them)."""
    return LtiUser.objects.filter(user=user).exists()


def has_line_item(course_id, resource_id):
    """Whether a line item of the course's contexts is known for the tool's resource."""
    return LtiLineItem.objects.filter(context__course_id=course_id, resource_id=resource_id).exists()


def _target(course_id, resource_id, user):
    """(context, known LtiLineItem or None) to report through: a context of the course that the person came from,
    the one holding the resource's line item first, else the latest that offers a line item service."""
    registrations = LtiUser.objects.filter(user=user).values_list("registration_id", flat=True)
    contexts = LtiContext.objects.select_related("registration").filter(course_id=course_id,
                                                                        registration_id__in=registrations)
    item = (LtiLineItem.objects.select_related("context__registration")
            .filter(resource_id=resource_id, context__in=contexts).order_by("-updated_at").first())
    if item is not None:
        return item.context, item
    return contexts.exclude(lineitems_url="").order_by("-updated_at").first(), None


def report_score(course_id, resource_id, user, score_given, score_maximum, *, label, tag="", timestamp=None):
    """Post one person's score for the tool's resource in the course (Completed, FullyGraded) to its line item,
    found or created by resourceId when no launch named it; returns the line item URL. ScoreNotSent otherwise."""
    context, item = _target(course_id, resource_id, user)
    if context is None:
        raise ScoreNotSent("no LTI context of this course for the person", final=True)
    url = item.url if item else ""
    try:
        if not url:
            if not context.lineitems_url:
                raise ScoreNotSent("the LMS offers no line item service for this course", final=True)
            url = find_or_create_line_item(context, resource_id, label, score_maximum, tag=tag)["id"]
            LtiLineItem.objects.record(context, resource_id, url)
        post_score(context, url, user, score_given, score_maximum, activity_progress="Completed",
                   grading_progress="FullyGraded", timestamp=timestamp)
    except (requests.RequestException, LtiServiceException, LtiException) as exc:
        raise ScoreNotSent(f"{exc.__class__.__name__}: {exc}"[:500]) from exc
    return url
