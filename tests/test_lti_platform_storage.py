"""Launches inside an LMS iframe that gets no cookies: the state and nonce travel through the platform's
storage (1EdTech "LTI Client Side postMessages" / platform storage) instead of the state cookie.

Over HTTP (live_server, the independent lti1p3platform FakeLMS) a ``requests.Session`` without cookies plays
the browser and posts what the tool's page would have read back from the platform storage. Every forged
or missing answer is refused with a clear page, a WARNING log line and no session. In headless Chromium,
with third-party cookies blocked and the platform (127.0.0.1) and the tool (localhost) on different sites,
a student opens the tool inside the test platform's course page and lands on the course page.
"""

import json
import logging
import re
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlparse

import pytest

from courses.models import Membership, PersonSession
from lti.models import LtiContext, UsedNonce
from tests.lti_support import ROLE, PlatformLogin, browser
from tests.support import ARTIFACTS, audit, chromium

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parent.parent
FRAME = "post_message_forwarding"


def _config(page):
    """The JSON configuration the tool's storage page hands to its script."""
    found = re.search(r'<script id="lti-storage-config" type="application/json">(.*?)</script>', page.text, re.S)
    assert found, page.text
    return json.loads(found[1])


def _storage_login(lms, client, user="mallory", target=FRAME):
    """Login initiation naming the platform's storage frame; returns the tool page's config and the auth query."""
    login = PlatformLogin(None, lms.conf)
    login.set_lti_message_hint(hint="resource-1")
    url = login.initiate_login(user) + "&lti_storage_target=" + target
    page = client.get(url, allow_redirects=False)
    assert page.status_code == 200, page.text
    config = _config(page)
    assert config["auth_url"].startswith(lms.base + "/auth?")
    auth = {k: v[0] for k, v in parse_qs(urlparse(config["auth_url"]).query).items()}
    return config, auth


def _storage_launch(lms, live_server, roles=(ROLE + "Learner",)):
    """Login with platform storage, then the platform's post of the id_token from a browser without cookies.

    Returns (the launch fields, the config of the tool's storage page).
    """
    config, auth = _storage_login(lms, browser())
    fields, _claims = lms.launch_fields(auth, "mallory", list(roles))
    page = browser().post(fields["launch_url"], data={"state": fields["state"], "id_token": fields["id_token"],
                                                      "lti_storage_target": FRAME}, allow_redirects=False)
    assert page.status_code == 200 and 'id="lti-storage-launch"' in page.text, page.text
    return fields, _config(page), config


def _answer(fields, state, nonce, origin, client=None):
    """The tool page's post of what the platform storage returned (state and nonce) with the id_token."""
    data = {"id_token": fields["id_token"], "state": fields["state"], "lti_storage_checked": "1"}
    if state is not None:
        data["lti_storage_state"] = state
    if nonce is not None:
        data["lti_storage_nonce"] = nonce
    headers = {"Origin": origin} if origin else {}
    return (client or browser()).post(fields["launch_url"], data=data, headers=headers, allow_redirects=False)


def _rejected(response, caplog, reason):
    assert response.status_code == 403, response.text
    assert "could not be verified" in response.text or "Please open the tool again" in response.text
    assert "sessionid" not in response.cookies and PersonSession.objects.count() == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name.startswith("lti")]
    assert any(reason in w for w in warnings), warnings


def test_launch_without_the_state_cookie_succeeds_with_state_and_nonce_from_platform_storage(lti_platform,
                                                                                              live_server):
    fields, check, login = _storage_launch(lti_platform, live_server)
    # the login page stores exactly this state and nonce, in the frame the platform named, for its origin
    assert (login["target"], login["platform_origin"]) == (FRAME, lti_platform.base)
    assert (check["state"], check["target"], check["platform_origin"]) == (fields["state"], FRAME, lti_platform.base)
    assert check["nonce"] == login["nonce"]
    assert not UsedNonce.objects.exists()  # asking the storage consumed nothing

    response = _answer(fields, check["state"], check["nonce"], live_server.url)

    assert response.status_code == 302, response.text
    course = LtiContext.objects.get(context_id="course-A").course
    assert response.headers["Location"].startswith(f"/c/{course.pk}/?ticket=")
    assert Membership.objects.get(course=course).role == Membership.LEARNER
    assert UsedNonce.objects.count() == 1
    page = browser().get(live_server.url + response.headers["Location"])  # no cookie: the single-use ticket opens it
    assert page.status_code == 200
    again = browser().get(live_server.url + response.headers["Location"])  # ... once
    assert again.status_code == 403


@pytest.mark.parametrize("state, nonce", [
    ("state-of-another-login", "ok"), ("ok", "another-nonce"), (None, "ok"), ("ok", None), ("", ""),
])
def test_wrong_or_missing_values_from_platform_storage_are_refused(lti_platform, live_server, caplog, state, nonce):
    fields, check, _login = _storage_launch(lti_platform, live_server)
    state = check["state"] if state == "ok" else state
    nonce = check["nonce"] if nonce == "ok" else nonce
    with caplog.at_level(logging.WARNING):
        response = _answer(fields, state, nonce, live_server.url)
    _rejected(response, caplog, "from platform storage does not match")
    assert 'id="lti-new-window"' in response.text  # the person can still try in a new window
    assert not UsedNonce.objects.exists()


@pytest.mark.parametrize("origin", ["https://evil.example", "null", ""])
def test_storage_answer_not_posted_by_the_tools_own_page_is_refused(lti_platform, live_server, caplog, origin):
    """A cross-site form cannot skip the page that asks the platform storage: its Origin gives it away."""
    fields, check, _login = _storage_launch(lti_platform, live_server)
    with caplog.at_level(logging.WARNING):
        response = _answer(fields, check["state"], check["nonce"], origin)
    _rejected(response, caplog, "not posted by the tool's own page")


def test_replayed_storage_answer_is_refused(lti_platform, live_server, caplog):
    fields, check, _login = _storage_launch(lti_platform, live_server)
    assert _answer(fields, check["state"], check["nonce"], live_server.url).status_code == 302
    PersonSession.objects.all().delete()
    with caplog.at_level(logging.WARNING):
        again = _answer(fields, check["state"], check["nonce"], live_server.url)
    _rejected(again, caplog, "unknown or expired state")  # the state was spent with the nonce
    assert UsedNonce.objects.count() == 1
    # the platform's post, replayed, does not even get the storage page: nothing is left to ask about
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        first = browser().post(fields["launch_url"], data={"state": fields["state"], "id_token": fields["id_token"],
                                                           "lti_storage_target": FRAME}, allow_redirects=False)
    _rejected(first, caplog, "no state cookie")
    assert 'id="lti-storage-launch"' not in first.text


def test_storage_answer_for_a_login_without_platform_storage_is_refused(lti_platform, live_server, caplog):
    auth = lti_platform.login(browser(), "mallory")  # an ordinary login: 302, state cookie, no storage
    fields, claims = lti_platform.launch_fields(auth, "mallory", [ROLE + "Learner"])
    with caplog.at_level(logging.WARNING):
        response = _answer(fields, fields["state"], claims["nonce"], live_server.url)
    _rejected(response, caplog, "did not use platform storage")


def test_without_cookie_and_storage_the_page_offers_a_new_window_that_retries_the_login(lti_platform, live_server,
                                                                                      caplog):
    auth = lti_platform.login(browser(), "mallory")
    fields, _claims = lti_platform.launch_fields(auth, "mallory", [ROLE + "Learner"])
    with caplog.at_level(logging.WARNING):
        response = browser().post(fields["launch_url"], data={"state": fields["state"], "id_token": fields["id_token"]},
                                  allow_redirects=False)
    _rejected(response, caplog, "no state cookie")
    assert "third-party cookies are blocked" in response.text
    retry = re.search(r'<a id="lti-new-window" class="button" href="([^"]+)" target="_blank"', response.text)[1]
    retry = retry.replace("&amp;", "&")
    query = parse_qs(urlparse(retry).query)
    assert query["lti1p3_new_window"] == ["1"] and query["iss"] == [lti_platform.issuer]
    assert query["login_hint"] == ["mallory"] and query["client_id"] == [lti_platform.client_id]
    again = browser().get(urljoin(live_server.url, retry), allow_redirects=False)  # the new, top-level window
    assert again.status_code == 302 and again.headers["Location"].startswith(lti_platform.base + "/auth?")


def test_login_in_a_cross_site_frame_checks_cookies_first_and_explains_when_nothing_works(lti_platform, live_server,
                                                                                        caplog):
    login = PlatformLogin(None, lti_platform.conf)
    login.set_lti_message_hint(hint="resource-1")
    client = browser()
    frame_headers = {"Sec-Fetch-Dest": "iframe", "Sec-Fetch-Site": "cross-site"}
    page = client.get(login.initiate_login("mallory"), headers=frame_headers, allow_redirects=False)
    assert page.status_code == 200
    config = _config(page)
    assert config["probe_cookies"] and config["target"] == ""
    assert config["login_url"].startswith("/lti/login?") and "lti_storage_target" not in config["login_url"]
    with caplog.at_level(logging.WARNING):
        blocked = client.get(urljoin(live_server.url, config["blocked_url"]))
    assert blocked.status_code == 200 and 'id="lti-new-window"' in blocked.text
    assert "no cookies and no platform storage" in caplog.text
    # outside a frame (or in the new window) the login redirects at once, as before
    top = client.get(login.initiate_login("mallory"), allow_redirects=False)
    assert top.status_code == 302


def test_test_platform_course_page_embeds_the_tool_beside_a_storage_frame(live_server, settings):
    from lti.demo import ensure_test_platform

    settings.PUBLIC_URL = live_server.url
    ensure_test_platform()
    client = browser()
    page = client.get(live_server.url + "/lti/test-platform/course", params={"user": "student-1"})
    assert page.status_code == 200
    assert '<iframe name="lti_storage"' in page.text and 'id="lti-tool"' in page.text
    start = re.search(r'id="lti-tool" name="lti-tool" src="([^"]+)"', page.text)[1].replace("&amp;", "&")
    login = client.get(urljoin(live_server.url, start), allow_redirects=False)
    assert "lti_storage_target=lti_storage" in login.headers["Location"]
    storage = client.get(live_server.url + "/lti/test-platform/storage")
    assert storage.status_code == 200 and live_server.url in storage.text
    script = re.search(r'<script type="module" src="([^"]+)"', storage.text)[1]
    assert "lti.get_data" in client.get(live_server.url + script).text
    without = client.get(live_server.url + "/lti/test-platform/course", params={"user": "student-1", "storage": "0"})
    assert '<iframe name="lti_storage"' not in without.text


# --- a real browser with third-party cookies blocked -----------------------------------------------------



PROBE = ("() => { document.cookie = 'probe=1; path=/; SameSite=None; Secure';"
         " return document.cookie.indexOf('probe=1') >= 0; }")


@pytest.mark.browser
def test_student_lands_on_the_course_page_in_a_cross_site_iframe_with_third_party_cookies_blocked(
        cross_site_server):
    from courses.demo import DEMO_CORPUS, DEMO_DOCUMENTS, DEMO_TITLE
    from courses.documents import add_document
    from courses.models import Course

    port, log_path = cross_site_server
    course = Course.objects.create(title=DEMO_TITLE, language="de")  # the demo texts, not indexed: no ingestion
    for filename, title in DEMO_DOCUMENTS:
        if (DEMO_CORPUS / filename).exists():
            add_document(course, filename, (DEMO_CORPUS / filename).read_bytes(), title=title, enqueue=False)
    platform, tool = f"http://127.0.0.1:{port}", f"http://localhost:{port}"
    launches = []
    # control: with third-party cookies allowed, the tool's iframe on the platform's page keeps a cookie
    with chromium(block_third_party_cookies=False) as (allowed, _watch):
        page = allowed.new_page()
        page.goto(f"{platform}/lti/test-platform/course?user=student-1&storage=0")
        page.frame_locator("#lti-tool").locator("#lti-new-window, #question").first.wait_for(timeout=60000)
        assert next(f for f in page.frames if f.url.startswith(tool)).evaluate(PROBE) is True

    # no cookie at all, partitioned or not (Chromium keeps partitioned ones where third-party cookies are blocked)
    with chromium(block_third_party_cookies=True, block_all_cookies=True) as (context, watch):
        page = context.new_page()
        page.on("request", lambda r: launches.append(r) if r.url == f"{tool}/lti/launch" else None)
        page.goto(f"{platform}/lti/test-platform/")
        page.locator('a[href$="?user=student-1&storage=1"]').click()
        page.wait_for_url(f"{platform}/lti/test-platform/course?*")
        frame = page.frame_locator("#lti-tool")
        frame.locator("#question").wait_for(timeout=60000)  # the tutor's course page, inside the iframe
        tool_frame = next(f for f in page.frames if f.url.startswith(f"{tool}/c/{course.pk}/"))
        assert tool_frame.evaluate(PROBE) is False  # this browser keeps no cookie for the tool in the iframe
        audit(page)  # the platform's course page and the tool's page in its iframe
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "lti_platform_storage_launch.png"), full_page=True)

        assert len(launches) == 2  # the platform's post, then the tool page's post of the storage answer
        first, answer = (r.all_headers() for r in launches)
        for headers in (first, answer):
            assert "lti1p3-" not in headers.get("cookie", "")  # the state cookie was never sent
        # the platform's post comes from another site ("null" after the cross-site redirects), the answer from
        # the tool's own page, which is the only Origin the tool accepts for it
        assert first.get("origin") in (platform, "null") and answer.get("origin") == tool
        assert "lti_storage_checked=1" in launches[1].post_data
        watch.assert_clean()

    log = log_path.read_text()
    assert "asking the platform's storage" in log and "rejected" not in log
    assert Membership.objects.get(course=course, user__lti_links__sub="demo-student-1").role == Membership.LEARNER
