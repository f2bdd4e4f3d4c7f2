"""The person's session inside the LMS frame, in headless Chromium, with the test platform (127.0.0.1) and the tool
(localhost) on different sites, so the tool's frame is a third-party context:

- where the browser keeps partitioned cookies (Chromium with third-party cookies blocked still does: CHIPS), a launch
  needs no extra click, and the tool's pages in the frame run on their partitioned session cookie;
- where the frame keeps no cookie at all, the pages carry the session in a header and follow links with single-use
  tickets: every URL they requested, replayed from a fresh browser, is refused; so is a revoked or expired session;
- where only a new window can sign in (no cookie in the frame and no platform storage), a deep link made in that
  window still ends in the frame: the window hands the signed answer back, and the frame posts it to the platform.
"""

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from urllib.parse import urlparse

import pytest
from django.utils import timezone

from courses.models import Course, Membership, PersonSession
from courses.sessions import revoke_sessions
from tests.support import ARTIFACTS, audit, chromium, web_server_process
from tests.test_lti_platform_storage import PROBE

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SESSION_CONFIG = "() => JSON.parse(document.getElementById('tutor-session').textContent)"


def in_thread(work):
    """Run database work off this thread (playwright's sync API runs an event loop here, where Django refuses it)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(work).result()


def _demo_course():
    from courses.demo import DEMO_TITLE

    return Course.objects.create(title=DEMO_TITLE, language="de")  # no texts: nothing to ingest


def _tool_frame(page, tool, path):
    """The frame of the page showing the tool's page at path (waits for it)."""
    for _ in range(600):
        found = next((f for f in page.frames if f.url.startswith(tool + path)), None)
        if found is not None:
            return found
        page.wait_for_timeout(100)
    raise AssertionError(f"no frame at {tool}{path}: {[f.url for f in page.frames]}")


def test_a_launch_in_a_cross_site_frame_needs_no_click_where_partitioned_cookies_are_allowed(cross_site_server):
    port, log_path = cross_site_server
    course = _demo_course()
    platform, tool = f"http://127.0.0.1:{port}", f"http://localhost:{port}"
    with chromium(block_third_party_cookies=True) as (context, watch):
        page = context.new_page()
        windows = len(context.pages)
        page.goto(f"{platform}/lti/test-platform/course?user=lecturer&storage=0")  # no platform storage either
        frame = page.frame_locator("#lti-tool")
        frame.locator("#question").wait_for(timeout=60000)  # the course page, without any click
        home = _tool_frame(page, tool, f"/c/{course.pk}/")
        assert home.evaluate(PROBE) is False  # an ordinary (unpartitioned) third-party cookie is refused here ...
        assert home.evaluate(SESSION_CONFIG)["via"] == "cookie"  # ... the partitioned session cookie came back
        assert "ticket=" not in home.evaluate("() => location.href")  # the spent ticket left the address
        frame.locator(f'a[href="/courses/{course.pk}/documents/"]').first.click()
        frame.locator("#upload, form[enctype]").first.wait_for(timeout=30000)
        documents = _tool_frame(page, tool, f"/courses/{course.pk}/documents/")
        assert documents.evaluate(SESSION_CONFIG)["via"] == "cookie"  # a plain link: the cookie is enough
        assert documents.evaluate("() => location.search") == ""
        assert len(context.pages) == windows  # no new window
        session_cookie = next(c for c in context.cookies() if c["name"] == "sessionid")
        assert session_cookie["secure"] and session_cookie["sameSite"] == "None"
        audit(page)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "lti_frame_partitioned_cookie.png"), full_page=True)
        watch.assert_clean()
    log = log_path.read_text()
    assert "rejected" not in log and "asking the platform's storage" not in log


def test_without_any_cookie_no_url_the_pages_request_works_from_another_browser(cross_site_server):
    """The frame keeps no cookie: the session travels in a header and links get single-use tickets. Every URL of
    the tool the pages requested (page loads, polls, tickets spent) is refused to a fresh browser; a revoked and an
    expired session are refused to the page itself."""
    port, _log = cross_site_server
    course = _demo_course()
    platform, tool = f"http://127.0.0.1:{port}", f"http://localhost:{port}"
    requested = []
    with chromium(block_third_party_cookies=True, block_all_cookies=True) as (context, watch):
        page = context.new_page()
        page.on("request", lambda r: requested.append((r.method, r.url, r.headers.get("x-tutor-session", ""))))
        page.goto(f"{platform}/lti/test-platform/course?user=lecturer")  # with platform storage
        frame = page.frame_locator("#lti-tool")
        frame.locator("#question").wait_for(timeout=60000)
        home = _tool_frame(page, tool, f"/c/{course.pk}/")
        config = home.evaluate(SESSION_CONFIG)
        assert config["via"] == "ticket" and config["session"]  # no cookie: the page carries the session itself
        frame.locator(f'a[href="/courses/{course.pk}/documents/"]').first.click()
        frame.locator("#upload, form[enctype]").first.wait_for(timeout=30000)
        documents = _tool_frame(page, tool, f"/courses/{course.pk}/documents/")
        assert documents.evaluate(SESSION_CONFIG)["via"] == "ticket"
        poll = f"async () => (await fetch('/api/v1/courses/{course.pk}/documents/')).status"  # as documents.js polls
        polled = documents.evaluate(poll)
        assert polled == 200  # the page's own call: the session in its header
        session_key = config["session"]

        own = [(method, url, header) for method, url, header in requested if url.startswith(tool)
               and urlparse(url).path.startswith(("/c/", "/courses/", "/api/"))]
        assert any("ticket=" in url for _m, url, _h in own) and any(header for _m, _u, header in own)
        assert not any(session_key in url for _m, url, _h in requested)  # the session itself: never in a URL
        fresh = watch.playwright.request.new_context()  # another browser: no cookie, no storage, nothing of this one
        for method, url, _header in own:
            if method == "GET":
                status = fresh.get(url, max_redirects=0).status
                assert status in (401, 403), (url, status)
        # nor can it ask for a ticket: that needs the session (and its CSRF token)
        assert fresh.post(f"{tool}/courses/session/ticket/").status in (401, 403)
        fresh.dispose()

        user = in_thread(lambda: Membership.objects.get(course=course, role=Membership.INSTRUCTOR).user)
        assert in_thread(lambda: revoke_sessions(user)) == 1
        assert documents.evaluate(poll) in (401, 403)
        frame.locator(f'a[href="/c/{course.pk}/"]').first.click()  # back to the chat: refused, with a clear page
        frame.locator(".error-box[role=alert]").wait_for(timeout=30000)
        assert "Werkzeug aus Ihrem Kurs" in frame.locator(".error-box[role=alert]").inner_text()

        page.goto(f"{platform}/lti/test-platform/course?user=lecturer")  # a new launch: a new session ...
        frame = page.frame_locator("#lti-tool")
        frame.locator("#question").wait_for(timeout=60000)
        in_thread(lambda: PersonSession.objects.filter(user=user).update(
            expire_date=timezone.now() - timedelta(seconds=1)))  # ... whose fixed lifetime is over
        home = _tool_frame(page, tool, f"/c/{course.pk}/")
        assert home.evaluate("async () => (await fetch(location.pathname)).status") == 403
    assert in_thread(lambda: PersonSession.objects.filter(user=user, expire_date__gt=timezone.now()).count()) == 0


@pytest.fixture
def unpartitioned_server(worker_env, tmp_path):
    """The two-site server whose cookies are not partitioned: the frame keeps none of them, a window of its own
    does (as in a browser that refuses even partitioned cookies in frames)."""
    from deploy.stack import free_port

    port = free_port()
    env = dict(worker_env, PUBLIC_URL=f"http://localhost:{port}", LTI_TEST_PLATFORM_URL=f"http://127.0.0.1:{port}",
               SESSION_COOKIE_PARTITIONED="0")
    with web_server_process(env, tmp_path / "web.log", port=port) as (_url, _port, process):
        yield port, process.log_path


def test_a_deep_link_made_in_a_new_window_is_placed_from_the_frame(unpartitioned_server):
    port, log_path = unpartitioned_server
    _demo_course()
    platform, tool = f"http://127.0.0.1:{port}", f"http://localhost:{port}"
    returns = []
    with chromium(block_third_party_cookies=True) as (context, watch):
        page = context.new_page()
        page.on("request", lambda r: returns.append(r) if r.url.endswith("/lti/test-platform/deep-link-return")
                else None)
        page.goto(f"{platform}/lti/test-platform/course?user=lecturer&deep_link=1&storage=0")
        frame = page.frame_locator("#lti-tool")
        offer = frame.locator("#lti-new-window")
        offer.wait_for(timeout=60000)  # no cookie in the frame and no platform storage: a window of its own
        with context.expect_page() as opened:
            offer.click()
        window = opened.value
        window.locator("#lti-place").wait_for(timeout=60000)  # signed in there, first-party
        assert window.url.startswith(tool)
        window.locator('#lti-place input[name="choice"]').first.check()
        window.locator("#lti-place button[type=submit]").click()
        # the answer goes back to the frame, which posts it to the platform: the LMS page that asked gets it
        placed = frame.locator("main li strong").first
        placed.wait_for(timeout=60000)
        assert placed.inner_text() == "Kurs-Tutor (Chat)"
        assert _tool_frame(page, platform, "/lti/test-platform/deep-link-return").parent_frame == page.main_frame
        assert len(returns) == 1 and returns[0].frame.parent_frame is not None  # posted from inside the frame
        if not window.is_closed():  # the window closes itself once the frame took the answer
            window.wait_for_event("close", timeout=30000)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "lti_deep_link_from_new_window.png"), full_page=True)
    log = log_path.read_text()
    assert "no cookies and no platform storage" in log and "rejected" not in log
