"""Names and Role Provisioning Service: sync a course's roster from the platform (all pages)."""

import logging

import requests
from django.db import transaction
from django.utils import timezone

from courses.models import Membership
from lti.launch import map_role, user_for
from lti.models import LtiContext
from lti.services import CachedServiceConnector

log = logging.getLogger(__name__)

SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
CONTAINER = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"


def fetch_members(lti_context):
    """Every member the platform lists for the context, following rel="next" Link headers."""
    connector = CachedServiceConnector(lti_context.registration)
    url, members = lti_context.memberships_url, []
    while url:
        page = connector.make_service_request([SCOPE], url, accept=CONTAINER, case_insensitive_headers=True)
        members.extend((page["body"] or {}).get("members", []))
        url = next_link(page["headers"].get("Link", ""))
    return members


def next_link(header):
    """The rel="next" URL of a Link header, case kept (pylti1p3 lowercases it, which breaks real URLs)."""
    for link in requests.utils.parse_header_links(header) if header else []:
        if link.get("rel") == "next":
            return link.get("url")
    return None


def sync_roster(lti_context_id):
    """Create/update the Memberships of the context's course from NRPS; inactive members are removed.

    Returns (added_or_updated, removed). Idempotent; takes an ID so a Celery task can wrap it.
    """
    lti_context = LtiContext.objects.select_related("registration", "course").get(pk=lti_context_id)
    if not lti_context.memberships_url:
        raise ValueError(f"LTI context {lti_context_id} has no NRPS memberships URL (no launch with NRPS yet)")
    members = fetch_members(lti_context)
    updated = removed = 0
    with transaction.atomic():
        for member in members:
            if not member.get("user_id"):
                continue
            user = user_for(lti_context.registration, member["user_id"], member.get("name", ""))
            if member.get("status", "Active") != "Active":
                removed += Membership.objects.filter(course=lti_context.course, user=user).delete()[0]
                continue
            Membership.objects.update_or_create(course=lti_context.course, user=user,
                                                defaults={"role": map_role(member.get("roles"))})
            updated += 1
        LtiContext.objects.filter(pk=lti_context.pk).update(roster_synced_at=timezone.now())
    log.info("lti: roster of course %s synced: %d members, %d removed", lti_context.course_id, updated, removed)
    return updated, removed
