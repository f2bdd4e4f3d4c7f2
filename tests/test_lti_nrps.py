"""NRPS roster sync against the independent platform: all pages, short role names, removals, cached token."""

import re

import pytest
from celery.signals import before_task_publish

from courses.access import tool_url
from courses.models import Membership
from lti.models import LtiContext, LtiUser
from lti.nrps import sync_roster
from tests.lti_support import ROLE, browser
from tests.support import page_forms, wait_for

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


@pytest.fixture
def queued():
    """The tasks this process queues from now on, as (task name, queue): the tool's web side runs in this process
    (live_server), so whether a launch queued a roster sync is known when its response has come, without waiting
    to see whether something happens."""
    sent = []

    def record(sender=None, routing_key=None, **_kwargs):
        sent.append((sender, routing_key))

    before_task_publish.connect(record, weak=False)
    yield sent
    before_task_publish.disconnect(record)


def roster_syncs(queued):
    """The roster syncs among the queued tasks."""
    return [entry for entry in queued if entry[0] == "lti.tasks.sync_roster"]


@pytest.mark.worker
def test_a_teacher_s_launch_syncs_the_roster_on_a_worker_once_a_day(lti_platform, celery_worker, settings, queued):
    """The product triggers NRPS: a teacher's launch queues the sync (queue lti), a student's does not, and a second
    teacher launch within LTI_ROSTER_SYNC_HOURS queues nothing; members who left lose access. A launch queues its
    sync when its transaction commits, before its response: "nothing was queued" is checked when the response has
    come, not after a pause in which a slow worker might not have got to it yet."""
    from django.core.cache import cache

    settings.LTI_ROSTER_SYNC_HOURS = 24
    cache.delete_many([f"lti:roster:{pk}" for pk in LtiContext.objects.values_list("pk", flat=True)])
    lti_platform.members = [{"user_id": "s1", "roles": ["Learner"], "status": "Active"},
                            {"user_id": "s2", "roles": ["Learner"], "status": "Active"}]
    lti_platform.launch(browser(), user_id="s0", roles=[ROLE + "Learner"])
    context = LtiContext.objects.get(context_id="course-A")
    assert not roster_syncs(queued), "a student's launch queues no sync"

    lti_platform.launch(browser(), user_id="teacher", roles=[ROLE + "Instructor"])
    assert roster_syncs(queued) == [("lti.tasks.sync_roster", "lti")]
    wait_for(lambda: Membership.objects.filter(course=context.course, user__lti_links__sub="s2").exists(), 60,
             "the roster sync by the worker")
    assert Membership.objects.filter(course=context.course).count() == 4  # s0, teacher, s1, s2

    lti_platform.members[1]["status"] = "Inactive"
    lti_platform.launch(browser(), user_id="teacher", roles=[ROLE + "Instructor"])
    assert len(roster_syncs(queued)) == 1, "synced once a day: the second launch queued no sync"
    assert Membership.objects.filter(course=context.course, user__lti_links__sub="s2").exists()


# --- The members page: lecturers see the course's people and can sync the roster now (issue 24 §5) --------------

def _rows(html):
    """The members table's rows as lists of cell texts."""
    body = html.split('<table id="members">')[1].split("</table>")[0].split("<tbody>")[1]
    return [[re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)]


@pytest.mark.worker
def test_lecturers_see_roles_last_activity_and_shared_names_only_and_sync_the_roster_now(
        lti_platform, live_server, celery_worker, settings, queued):
    settings.LTI_ROSTER_SYNC_HOURS = 0  # no sync after a launch: only the lecturer's button syncs
    student = browser()
    lti_platform.launch(student, user_id="s0", roles=[ROLE + "Learner"])  # Moodle shares no name
    teacher = browser()
    lti_platform.launch(teacher, user_id="teacher", roles=[ROLE + "Instructor"], name="Prof. Lehr")
    course = LtiContext.objects.get().course
    url = live_server.url + tool_url("courses:members", course.pk)  # each browser signed in by its launch

    page = teacher.get(url)
    assert page.status_code == 200
    rows = _rows(page.text)
    assert [row[:2] for row in rows] == [["Prof. Lehr", "Instructor"], ["Member 1 (no name shared)", "Learner"]]
    assert all(re.search(r"\d", row[2]) for row in rows)  # both launched: a last activity each
    assert "Not fetched from the learning platform yet." in page.text
    assert student.get(url).status_code == 403  # the course's access rule: lecturers only

    lti_platform.members = [{"user_id": "s1", "roles": ["Learner"], "name": "Ada", "status": "Active"},
                            {"user_id": "s2", "roles": ["Learner"], "status": "Active"}]
    [form] = [f for f in page_forms(page.text) if f["attrs"].get("id") == "sync-members"]
    synced = teacher.post(live_server.url + form["action"], data=form["fields"])
    assert synced.status_code == 200 and "is being fetched from the learning platform" in synced.text
    assert roster_syncs(queued) == [("lti.tasks.sync_roster", "lti")]
    wait_for(lambda: LtiContext.objects.get().roster_synced_at, 60, "the roster sync by the worker")
    rows = _rows(teacher.get(url).text)
    assert ["Ada", "Learner", "not yet active"] in rows  # a name where Moodle shared one
    assert ["Member 4 (no name shared)", "Learner", "not yet active"] in rows  # none where it did not
    assert len(rows) == 4 and "Prof. Lehr" == rows[0][0]


def test_sync_now_says_when_the_lms_offers_no_roster(lti_platform, live_server, queued):
    teacher = browser()
    lti_platform.launch(teacher, user_id="teacher", roles=[ROLE + "Instructor"])
    LtiContext.objects.update(memberships_url="")
    course = LtiContext.objects.get().course
    page = teacher.get(live_server.url + tool_url("courses:members", course.pk)).text
    [form] = [f for f in page_forms(page) if f["attrs"].get("id") == "sync-members"]
    answer = teacher.post(live_server.url + form["action"], data=form["fields"])
    assert "has not offered its member list for this course" in answer.text
    assert not roster_syncs(queued)
