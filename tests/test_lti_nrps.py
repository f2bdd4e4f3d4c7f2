"""NRPS roster sync against the independent platform: all pages, short role names, removals, cached token."""

import pytest

from courses.models import Membership
from lti.models import LtiContext, LtiUser
from lti.nrps import sync_roster
from tests.lti_support import ROLE, browser

pytestmark = pytest.mark.django_db(transaction=True)


def test_roster_sync_follows_every_page_and_maps_short_roles(lti_platform):
    lti_platform.launch(browser(), user_id="teacher", roles=[ROLE + "Instructor"])
    lti_platform.members = [
        {"user_id": "teacher", "roles": ["Instructor"], "status": "Active"},
        {"user_id": "s1", "roles": ["Learner"], "name": "Ada"},
        {"user_id": "s2", "roles": ["Learner"]},
        {"user_id": "ta", "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"]},
        {"user_id": "s3", "roles": ["Learner"]},
    ]
    context = LtiContext.objects.get(context_id="course-A")

    assert sync_roster(context.pk) == (5, 0)

    roles = {link.sub: Membership.objects.get(course=context.course, user=link.user).role
             for link in LtiUser.objects.filter(registration=context.registration)}
    assert roles == {"teacher": "instructor", "s1": "learner", "s2": "learner", "ta": "ta", "s3": "learner"}
    assert LtiUser.objects.get(sub="s1").name == "Ada"
    pages = [p for m, p, _h in lti_platform.requests if p.startswith("/nrps/")]
    assert pages == ["/nrps/course-A", "/nrps/course-A?page=1", "/nrps/course-A?page=2"]
    accept = [h.get("Accept") for m, p, h in lti_platform.requests if p.startswith("/nrps/")]
    assert set(accept) == {"application/vnd.ims.lti-nrps.v2.membershipcontainer+json"}

    lti_platform.members[2]["status"] = "Inactive"
    assert sync_roster(context.pk) == (4, 1)
    assert not Membership.objects.filter(user__lti_links__sub="s2").exists()
    tokens = [p for m, p, _h in lti_platform.requests if p == "/token"]
    assert len(tokens) == 1, "the access token is cached in Redis until it expires"


def test_sync_without_nrps_url_says_why(lti_platform):
    lti_platform.launch(browser(), user_id="teacher", roles=[ROLE + "Instructor"])
    context = LtiContext.objects.get()
    context.memberships_url = ""
    context.save()
    with pytest.raises(ValueError, match="no NRPS memberships URL"):
        sync_roster(context.pk)


@pytest.mark.worker
def test_a_teacher_s_launch_syncs_the_roster_on_a_worker_once_a_day(lti_platform, celery_worker, settings):
    """The product triggers NRPS: a teacher's launch queues the sync (queue generate), a student's does not,
    and a second teacher launch within LTI_ROSTER_SYNC_HOURS queues nothing; members who left lose access."""
    import time

    from django.core.cache import cache

    settings.LTI_ROSTER_SYNC_HOURS = 24
    cache.delete_many([f"lti:roster:{pk}" for pk in LtiContext.objects.values_list("pk", flat=True)])
    lti_platform.members = [{"user_id": "s1", "roles": ["Learner"], "status": "Active"},
                            {"user_id": "s2", "roles": ["Learner"], "status": "Active"}]
    lti_platform.launch(browser(), user_id="s0", roles=[ROLE + "Learner"])
    context = LtiContext.objects.get(context_id="course-A")
    cache.delete(f"lti:roster:{context.pk}")
    time.sleep(1)
    assert not [p for _m, p, _h in lti_platform.requests if p.startswith("/nrps/")], "a student's launch syncs nothing"

    lti_platform.launch(browser(), user_id="teacher", roles=[ROLE + "Instructor"])
    deadline = time.monotonic() + 60
    while not Membership.objects.filter(course=context.course, user__lti_links__sub="s2").exists():
        assert time.monotonic() < deadline, "the roster was not synced by the worker"
        time.sleep(0.2)
    assert Membership.objects.filter(course=context.course).count() == 4  # s0, teacher, s1, s2

    lti_platform.members[1]["status"] = "Inactive"
    lti_platform.launch(browser(), user_id="teacher", roles=[ROLE + "Instructor"])
    time.sleep(2)
    assert Membership.objects.filter(course=context.course, user__lti_links__sub="s2").exists(), "synced once a day"
