"""LTI 1.3 login + launch through real HTTP (live_server) against an independent platform (lti1p3platform).

Every rejected launch shows a clear page, logs a WARNING with the reason and creates no session.
"""

import logging
import time

import pytest
from django.urls import reverse

from courses.models import Membership, PersonSession
from lti.keys import new_key_pair
from lti.launch import map_role
from lti.models import LtiContext, LtiUser, UsedNonce, pseudonym
from tests.lti_support import ROLE, browser

pytestmark = pytest.mark.django_db(transaction=True)

TA = "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"
ADMIN = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator"


@pytest.fixture
def lms(lti_platform):
    return lti_platform


def test_role_mapping_reads_full_uris_and_short_names():
    assert map_role([ROLE + "Instructor"]) == Membership.INSTRUCTOR
    assert map_role(["Learner"]) == Membership.LEARNER
    assert map_role([TA]) == Membership.TEACHING_ASSISTANT
    assert map_role([ADMIN, ROLE + "Learner"]) == Membership.ADMINISTRATOR
    assert map_role(["http://purl.imsglobal.org/vocab/lis/v2/membership#ContentDeveloper"]) == Membership.INSTRUCTOR
    assert map_role(["urn:lti:role:ims/lis/Mentor"]) == Membership.LEARNER


@pytest.mark.parametrize("roles, expected", [
    ([ROLE + "Instructor"], Membership.INSTRUCTOR),
    ([ROLE + "Learner"], Membership.LEARNER),
    (["Learner"], Membership.LEARNER),
    ([TA], Membership.TEACHING_ASSISTANT),
    ([ADMIN], Membership.ADMINISTRATOR),
    ([ROLE + "ContentDeveloper"], Membership.INSTRUCTOR),
])
def test_launch_as_each_role_lands_on_the_course_page(lms, live_server, roles, expected):
    client = browser()
    response = lms.launch(client, user_id="sub-42", roles=roles, name="Erika Mustermann", locale="de-DE")

    assert response.status_code == 302, response.text
    mapping = LtiContext.objects.get(context_id="course-A")
    assert response.headers["Location"].startswith(reverse("tutor:home", args=[mapping.course_id]) + "?ticket=")
    link = LtiUser.objects.get(sub="sub-42")
    assert link.user.username == pseudonym(lms.issuer, "sub-42")
    assert link.name == "Erika Mustermann" and link.user.email == "" and link.user.first_name == ""
    assert Membership.objects.get(course=mapping.course, user=link.user).role == expected
    assert mapping.memberships_url == lms.base + "/nrps/course-A"
    assert client.cookies.get("django_language") == "de"
    assert "sessionid" in client.cookies
    page = client.get(live_server.url + response.headers["Location"])
    assert page.status_code == 200


def test_the_launch_message_is_not_kept_in_redis(lms, live_server):
    """pylti1p3 would cache the LMS's whole launch message (name, e-mail) in Redis for a day; the tool keeps
    none of it, and its login's own nonce key lives only as long as a login."""
    import redis
    from django.conf import settings

    client = browser()
    response = lms.launch(client, user_id="sub-privacy", roles=[ROLE + "Instructor"], name="Erika Mustermann",
                          email="erika.mustermann@uni.example", deep_link=True)
    assert response.status_code == 200 and "deep" in response.text.lower()  # deep linking still works
    store = redis.Redis.from_url(settings.REDIS_URL)
    keys = list(store.scan_iter(count=1000))
    assert keys, "the launch left its cached keys in this Redis database"
    for key in keys:
        value = (store.get(key) if store.type(key) == b"string" else store.dump(key)) or b""
        assert b"Mustermann" not in value and b"erika.mustermann" not in value, key
    launch_keys = [key for key in keys if b"launch-" in key]
    assert not launch_keys
    for key in keys:
        if b"lti1p3-nonce-" in key:
            assert 0 < store.ttl(key) <= 600


def test_second_launch_updates_the_role_and_reuses_course_and_user(lms):
    lms.launch(browser(), user_id="sub-7", roles=[ROLE + "Learner"])
    response = lms.launch(browser(), user_id="sub-7", roles=[ROLE + "Instructor"])
    assert response.status_code == 302
    assert LtiContext.objects.count() == 1 and LtiUser.objects.count() == 1
    assert Membership.objects.get().role == Membership.INSTRUCTOR


def test_two_first_launches_into_a_new_course_at_once_both_get_in(lms, monkeypatch):
    """Two people open the tool in a course it has never seen at the same moment: both launches find no course yet
    (held together right there), both succeed, one course, and each nonce is spent by a launch that got in."""
    import threading

    from courses.models import Course
    from lti import launch as launch_module

    original = launch_module.course_of_context
    together = threading.Barrier(2, timeout=30)

    def both_at_once(issuer, context_id):
        together.wait()  # each launch has looked for the context's course and found none
        return original(issuer, context_id)

    monkeypatch.setattr(launch_module, "course_of_context", both_at_once)
    responses = {}

    def open_tool(user_id):
        responses[user_id] = lms.launch(browser(), user_id=user_id, context_id="course-new")

    threads = [threading.Thread(target=open_tool, args=(user_id,)) for user_id in ("first", "second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert {user: r.status_code for user, r in responses.items()} == {"first": 302, "second": 302}, \
        {user: r.text[:300] for user, r in responses.items()}
    [context] = LtiContext.objects.filter(context_id="course-new")
    assert Course.objects.count() == 1  # the losing launch's course went with its savepoint
    assert Membership.objects.filter(course=context.course).count() == 2
    assert UsedNonce.objects.count() == 2


def test_a_launch_that_fails_after_validation_does_not_spend_its_nonce(lms, monkeypatch):
    """An error while the launch is applied (here: the database refusing the course) rolls the nonce back with
    everything else, so the same launch form still works (no nonce spent for nothing)."""
    from django.db import OperationalError

    from courses.models import Course
    from lti import launch as launch_module

    client = browser()
    fields, _claims = _legit(lms, client)
    calls = []

    def failing_once(issuer, context_id):
        calls.append(context_id)
        if len(calls) == 1:
            raise OperationalError("the database went away")
        return None

    monkeypatch.setattr(launch_module, "course_of_context", failing_once)
    assert _post(client, fields).status_code == 500
    assert not UsedNonce.objects.exists() and not Course.objects.exists()
    assert _post(client, fields).status_code == 302  # the very same form, once the database is back
    assert UsedNonce.objects.count() == 1


def test_login_from_unregistered_platform_is_refused(live_server, caplog):
    client = browser()
    with caplog.at_level(logging.WARNING):
        response = client.get(live_server.url + "/lti/login", params={"iss": "https://evil.example", "login_hint": "x",
                                                                      "target_link_uri": live_server.url})
    assert response.status_code == 400
    assert "not registered" in response.text
    assert "login:" in caplog.text


def test_jwks_publishes_the_active_tool_key(live_server):
    keys = browser().get(live_server.url + "/lti/jwks").json()["keys"]
    assert len(keys) == 1 and keys[0]["kty"] == "RSA" and keys[0]["alg"] == "RS256" and keys[0]["kid"]


# --- security: each forgery is rejected with a page, a log line and no session -------------------------

def _rejected(response, caplog, reason):
    assert response.status_code == 403, response.text
    assert "could not be verified" in response.text or "Please open the tool again" in response.text
    assert "sessionid" not in response.cookies
    assert PersonSession.objects.count() == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name.startswith("lti")]
    assert any(reason in w for w in warnings), warnings


def _post(client, fields, id_token=None, state=None):
    return client.post(fields["launch_url"], data={"state": fields["state"] if state is None else state,
                                                   "id_token": id_token or fields["id_token"]},
                       allow_redirects=False)


def _legit(lms, client, **kwargs):
    auth = lms.login(client, "mallory")
    return lms.launch_fields(auth, "mallory", [ROLE + "Instructor"], **kwargs)


def test_forged_signature_is_rejected(lms, caplog):
    client = browser()
    fields, claims = _legit(lms, client)
    other_key, _public = new_key_pair()
    with caplog.at_level(logging.WARNING):
        response = _post(client, fields, lms.sign(claims, private_pem=other_key))
    _rejected(response, caplog, "Signature verification failed")


def test_unknown_kid_is_rejected(lms, caplog):
    client = browser()
    fields, claims = _legit(lms, client)
    with caplog.at_level(logging.WARNING):
        response = _post(client, fields, lms.sign(claims, kid="not-a-known-kid"))
    _rejected(response, caplog, "Unable to find public key")


def test_wrong_audience_is_rejected(lms, caplog):
    client = browser()
    fields, claims = _legit(lms, client)
    claims.update(aud="another-tool", azp="another-tool")
    with caplog.at_level(logging.WARNING):
        response = _post(client, fields, lms.sign(claims))
    _rejected(response, caplog, "Registration not found")


def test_audience_list_without_our_azp_is_rejected(lms, caplog):
    client = browser()
    fields, claims = _legit(lms, client)
    claims.update(aud=[lms.client_id, "another-tool"], azp="another-tool")
    with caplog.at_level(logging.WARNING):
        response = _post(client, fields, lms.sign(claims))
    _rejected(response, caplog, "azp")


def test_expired_token_is_rejected(lms, caplog):
    client = browser()
    fields, claims = _legit(lms, client)
    claims.update(iat=int(time.time()) - 7200, exp=int(time.time()) - 3600)
    with caplog.at_level(logging.WARNING):
        response = _post(client, fields, lms.sign(claims))
    _rejected(response, caplog, "expired")


def test_replayed_nonce_is_rejected(lms, caplog):
    client = browser()
    fields, _claims = _legit(lms, client)
    assert _post(client, fields).status_code == 302
    assert UsedNonce.objects.count() == 1
    PersonSession.objects.all().delete()
    attacker = browser()  # a copy of the whole browser state: cookie and form
    attacker.cookies.update({name: value for name, value in client.cookies.items() if name.startswith("lti1p3-")})
    with caplog.at_level(logging.WARNING):
        response = _post(attacker, fields)
    _rejected(response, caplog, "replayed nonce")


def test_missing_state_is_rejected(lms, caplog):
    client = browser()
    fields, _claims = _legit(lms, client)
    with caplog.at_level(logging.WARNING):
        response = _post(client, fields, state="")
    _rejected(response, caplog, "missing state")


def test_state_from_another_browser_is_rejected(lms, caplog):
    fields, _claims = _legit(lms, browser())
    with caplog.at_level(logging.WARNING):
        response = _post(browser(), fields)  # a different browser: no state cookie
    _rejected(response, caplog, "state does not match")


def test_state_of_another_login_is_rejected(lms, caplog):
    client = browser()
    fields_1, _claims = _legit(lms, client)
    fields_2, _claims = _legit(lms, client)
    with caplog.at_level(logging.WARNING):
        response = _post(client, fields_1, state=fields_2["state"])
    _rejected(response, caplog, "nonce does not belong to this state")


def test_unknown_deployment_is_rejected(lms, caplog):
    client = browser()
    fields, claims = _legit(lms, client)
    claims["https://purl.imsglobal.org/spec/lti/claim/deployment_id"] = "999"
    with caplog.at_level(logging.WARNING):
        response = _post(client, fields, lms.sign(claims))
    _rejected(response, caplog, "Unable to find deployment")


def test_unsupported_lti_version_is_rejected(lms, caplog):
    client = browser()
    fields, claims = _legit(lms, client)
    claims["https://purl.imsglobal.org/spec/lti/claim/version"] = "1.1"
    with caplog.at_level(logging.WARNING):
        response = _post(client, fields, lms.sign(claims))
    _rejected(response, caplog, "unsupported LTI version")


def test_unsupported_message_type_is_rejected(lms, caplog):
    client = browser()
    fields, claims = _legit(lms, client)
    claims["https://purl.imsglobal.org/spec/lti/claim/message_type"] = "LtiSubmissionReviewRequest"
    with caplog.at_level(logging.WARNING):
        response = _post(client, fields, lms.sign(claims))
    _rejected(response, caplog, "unsupported message type")


def test_launch_meant_for_another_tool_is_rejected(lms, caplog):
    client = browser()
    fields, claims = _legit(lms, client)
    claims["https://purl.imsglobal.org/spec/lti/claim/target_link_uri"] = "https://other-tool.example/launch"
    with caplog.at_level(logging.WARNING):
        response = _post(client, fields, lms.sign(claims))
    assert response.status_code == 403 and "another tool" in response.text
    assert "target_link_uri" in caplog.text and PersonSession.objects.count() == 0
    assert not LtiContext.objects.exists()


def test_launch_for_course_a_is_refused_on_course_b(lms, live_server, caplog):
    student = browser()
    response_a = lms.launch(student, user_id="student", context_id="course-A")
    lms.launch(browser(), user_id="teacher", roles=[ROLE + "Instructor"], context_id="course-B")
    course_b = LtiContext.objects.get(context_id="course-B").course_id
    ticket_a = response_a.headers["Location"].split("?ticket=")[1]
    sessions = PersonSession.objects.count()
    with caplog.at_level(logging.WARNING):
        with_ticket = browser().get(f"{live_server.url}/c/{course_b}/", params={"ticket": ticket_a})
        with_session = student.get(f"{live_server.url}/c/{course_b}/")
    for response in (with_ticket, with_session):
        assert response.status_code == 403
        assert "Please open this tool from your course" in response.text
    assert PersonSession.objects.count() == sessions
    assert sum("courses.access: refused" in r.getMessage() for r in caplog.records) == 2


def test_platform_key_rotation_refetches_the_jwks_once(lms):
    assert lms.launch(browser(), user_id="u1").status_code == 302  # JWKS now cached in Redis
    jwks_fetches = sum(p == "/jwks" for _m, p, _h in lms.requests)
    lms.private_pem, lms.public_pem = new_key_pair()
    lms.registration.set_platform_private_key(lms.private_pem).set_platform_public_key(lms.public_pem)

    assert lms.launch(browser(), user_id="u1").status_code == 302
    assert sum(p == "/jwks" for _m, p, _h in lms.requests) == jwks_fetches + 1
    assert lms.launch(browser(), user_id="u1").status_code == 302
    assert sum(p == "/jwks" for _m, p, _h in lms.requests) == jwks_fetches + 1


def test_a_platform_that_rotates_its_key_under_the_same_kid_gets_in_after_one_refetch(lms, monkeypatch, caplog):
    """A re-installed platform signs with a new key under the old kid: the signature fails against the cached key
    set, the tool fetches the set once more and lets the launch in; a forged token right after is refused without
    another fetch (at most one refetch a minute per platform)."""
    def fetches():
        return sum(p == "/jwks" for _m, p, _h in lms.requests)

    kid = lms.registration.get_kid()
    assert lms.launch(browser(), user_id="u1").status_code == 302  # the key set is cached now
    before = fetches()
    lms.private_pem, lms.public_pem = new_key_pair()
    lms.registration.set_platform_private_key(lms.private_pem).set_platform_public_key(lms.public_pem)
    published = lms.registration.get_jwks
    monkeypatch.setattr(lms.registration, "get_kid", lambda: kid)
    monkeypatch.setattr(lms.registration, "get_jwks", lambda: [dict(key, kid=kid) for key in published()])

    assert lms.launch(browser(), user_id="u1").status_code == 302
    assert fetches() == before + 1
    assert lms.launch(browser(), user_id="u1").status_code == 302  # the new key is the cached one now
    assert fetches() == before + 1

    client = browser()
    fields, claims = _legit(lms, client)
    forged_key, _public = new_key_pair()
    with caplog.at_level(logging.WARNING):
        response = _post(client, fields, lms.sign(claims, private_pem=forged_key, kid=kid))
    assert response.status_code == 403 and "sessionid" not in response.cookies
    assert any("Signature verification failed" in r.getMessage() for r in caplog.records if r.name.startswith("lti"))
    assert fetches() == before + 1  # within the minute: no second fetch


# --- the tool registered again by the same platform (Moodle: "register as a new tool", delete and re-add) ---

def _session_user_id(client):
    return PersonSession.objects.get(session_key=client.cookies["sessionid"]).get_decoded()["_auth_user_id"]


def test_a_second_registration_of_the_platform_keeps_each_person_and_course(lms, live_server):
    from courses.documents import add_document
    from courses.models import Course
    from tutor.chat.models import Conversation

    assert lms.launch(browser(), user_id="teach-1", roles=[ROLE + "Instructor"]).status_code == 302
    assert lms.launch(browser(), user_id="stud-1").status_code == 302
    first = LtiContext.objects.get()
    person = LtiUser.objects.get(sub="stud-1").user
    conversation = Conversation.objects.create(course=first.course, user=person)
    add_document(first.course, "skript.md", b"# Kapitel 1\n\nDer Init-Prozess startet zuerst.", enqueue=False)

    lms.register_again()
    second = lms.register_in_tool()
    student = browser()
    response = lms.launch(student, user_id="stud-1")

    assert response.status_code == 302, response.text  # was HTTP 500: IntegrityError on lti_ltiuser_user_id_key
    links = LtiUser.objects.filter(sub="stud-1")
    assert {link.registration for link in links} == {first.registration, second}
    assert {link.user for link in links} == {person} and _session_user_id(student) == str(person.pk)
    mapping = LtiContext.objects.get(registration=second)
    assert mapping.course == first.course and Course.objects.count() == 1  # the same course, with its texts
    assert list(first.course.documents.values_list("filename", flat=True)) == ["skript.md"]
    assert Conversation.objects.get(pk=conversation.pk).user == person
    assert Membership.objects.filter(user=person).count() == 1
    assert student.get(live_server.url + response.headers["Location"]).status_code == 200


def test_another_platform_with_the_same_context_id_gets_its_own_course(lms, live_server):
    from tests.lti_support import FakeLMS

    lms.launch(browser(), user_id="stud-1", context_id="course-A")
    other = FakeLMS(live_server.url)  # another issuer
    try:
        other.register_in_tool()
        assert other.launch(browser(), user_id="stud-1", context_id="course-A").status_code == 302
    finally:
        other.close()
    courses = {m.course_id for m in LtiContext.objects.filter(context_id="course-A")}
    assert len(courses) == 2 and LtiUser.objects.filter(sub="stud-1").values("user").distinct().count() == 2


def test_roster_and_grades_through_a_second_registration_reach_the_same_people(lms):
    from lti.ags import find_or_create_line_item, post_score
    from lti.nrps import sync_roster
    from tutor.chat.retention import delete_user_data, export_user_data

    lms.launch(browser(), user_id="stud-1")
    lms.launch(browser(), user_id="stud-old")  # launches only under the first registration
    person, old_only = (LtiUser.objects.get(sub=s).user for s in ("stud-1", "stud-old"))
    lms.register_again()
    second = lms.register_in_tool()
    lms.launch(browser(), user_id="teach-1", roles=[ROLE + "Instructor"])
    mapping = LtiContext.objects.get(registration=second)
    lms.members = [{"user_id": "teach-1", "roles": [ROLE + "Instructor"]}, {"user_id": "stud-1", "roles": ["Learner"]},
                   {"user_id": "stud-new", "roles": ["Learner"]}]

    assert sync_roster(mapping.pk) == (3, 0)
    assert LtiUser.objects.get(registration=second, sub="stud-1").user == person
    assert Membership.objects.filter(course=mapping.course, user=person).count() == 1

    item = find_or_create_line_item(mapping, "quiz-1", "Quiz 1", 10)
    post_score(mapping, item["id"], person, 7, 10)
    post_score(mapping, item["id"], old_only, 4, 10)  # the platform's user id is the same under every registration
    assert {u: s["scoreGiven"] for u, s in lms.scores[1].items()} == {"stud-1": 7, "stud-old": 4}

    assert export_user_data(person.pk)["user_id"] == person.pk
    assert delete_user_data(person.pk)["conversations"] == 0
