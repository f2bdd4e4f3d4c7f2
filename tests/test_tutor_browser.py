"""A student in headless Chromium: launches through the built-in LTI test platform, asks, watches the
answer stream, opens a citation, rates the answer.

The launch is a real signed LTI 1.3 launch (/lti/test-platform/ → /lti/login → /lti/launch → /c/<course>/?ticket=…,
a single-use ticket that the page drops from its address);
the page runs on the real uvicorn server, the answer comes from the real worker through Redis pub/sub.
Every page gets the accessibility audit (axe-core, WCAG 2.1 AA) and runs under the strict Content-Security-Policy
(a blocked script is a console error). Screenshots are kept in test-artifacts/.
"""

import pytest

from tests.support import ARTIFACTS, INIT_TEXT, audit, chromium, demo_course_with, point_tutor_at
from tutor.chat.models import Feedback

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_student_launches_asks_sees_the_streamed_answer_and_opens_a_citation(celery_worker, web_server, stub_llm):
    course = demo_course_with(("systemstart.md", INIT_TEXT))
    point_tutor_at(course, stub_llm.url, welcome_message="Willkommen! Frag mich zum Kurs.")
    stub_llm.reply = "Der Init-Prozess ist der **erste Prozess** und hat die PID 1 [1].</pre>"  # as SmolLM2 ends
    stub_llm.token_delay = 0.3

    with chromium() as (browser, watch):
        page = browser.new_page()
        requested = []
        page.on("request", lambda request: requested.append(request.url))
        page.goto(f"{web_server}/lti/test-platform/")
        audit(page)
        page.locator('a[href$="?user=student-1"]').click()  # "Alex Student", a learner
        page.wait_for_url(f"{web_server}/c/{course.pk}/*", timeout=30000)
        assert page.locator(".welcome").inner_text().startswith("Willkommen!")
        audit(page)
        page.fill("#question", "Welche Prozessnummer hat der Init-Prozess?")
        page.click("#ask")

        streaming = page.locator(".msg.assistant .body.streaming")
        streaming.wait_for(timeout=30000)
        page.wait_for_function("() => { const b = document.querySelector('.msg.assistant .body.streaming');"
                               " return b && b.textContent.startsWith('Der Init-Prozess ist'); }", timeout=30000)
        partial = streaming.inner_text()
        assert "PID 1" not in partial  # seen mid-stream, before the last pieces arrived
        # while it streams, the answer shows as the same sanitized Markdown as the final one: bold, never "**"
        page.wait_for_function("() => { const b = document.querySelector('.msg.assistant .body.streaming');"
                               " return b && b.querySelector('strong') &&"
                               " b.querySelector('strong').textContent === 'erste Prozess'; }", timeout=30000)
        mid = streaming.inner_text()
        assert "**" not in mid and "PID 1" not in mid, mid

        citation = page.locator(".msg.assistant a.cite").first
        citation.wait_for(timeout=30000)
        answer = page.locator(".msg.assistant").last
        assert "erste Prozess" in answer.locator(".body strong").inner_text()
        assert "</pre>" not in answer.inner_text() and "**" not in answer.inner_text()
        assert answer.locator(".sources li.cited a").count() == 1
        assert not [url for url in requested if "/stream/" in url]  # it came in the question's own response
        audit(page)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "tutor_chat_answer.png"), full_page=True)

        citation.click()
        page.wait_for_selector("#passage", timeout=15000)
        assert "erste Prozess, den der Kernel" in page.locator("#passage").inner_text()
        assert f"/courses/{course.pk}/passage/" in page.url and "?" not in page.url  # no credential in the address
        audit(page)
        page.screenshot(path=str(ARTIFACTS / "tutor_chat_citation.png"), full_page=True)

        page.go_back()
        page.locator(".msg.assistant a.cite").first.wait_for(timeout=15000)  # the conversation is resumed
        assert page.locator(".msg.user").first.inner_text().startswith("Welche Prozessnummer")
        page.locator(".msg.assistant .feedback button.down").click()
        page.fill(".msg.assistant .feedback input", "Bitte ausführlicher")
        page.locator(".msg.assistant .feedback button").nth(2).click()  # send the comment
        page.locator(".msg.assistant .feedback .muted").wait_for(timeout=15000)

        # the connection drops after the question was accepted: the page continues on the answer's own stream
        def cut_after_accepted(route):
            whole = route.fetch().text()
            route.fulfill(status=200, headers={"Content-Type": "text/event-stream"},
                          body=whole[:whole.index("\n\n") + 2])

        page.route("**/ask/**", cut_after_accepted)
        stub_llm.reply = "Mit apt install [1]."
        page.fill("#question", "Wie installiert man Pakete mit apt?")
        page.click("#ask")
        page.wait_for_function("() => [...document.querySelectorAll('.msg.assistant .body')]"
                               ".some(b => b.textContent.includes('Mit apt install'))", timeout=30000)
        assert [url for url in requested if "/stream/" in url]
        watch.assert_clean()

    feedback = Feedback.objects.get()
    assert feedback.rating == Feedback.DOWN and feedback.comment == "Bitte ausführlicher"


@pytest.mark.django_db(transaction=False)
def test_the_accessibility_audit_finds_serious_violations_and_the_watch_finds_errors():
    """The checks the browser tests rely on can fail: an unlabelled field and an image without alt text are
    serious violations of WCAG 2.1 AA; a 404 and a console error are recorded."""
    bad = ('<!doctype html><html lang="en"><head><title>x</title></head><body><main><img src="/a.png">'
           '<input type="text"><script>console.error("broken")</script></main></body></html>')
    with chromium() as (browser, watch):
        page = browser.new_page()
        page.route("http://audit.test/", lambda route: route.fulfill(body=bad, content_type="text/html"))
        page.route("http://audit.test/a.png", lambda route: route.fulfill(status=404, body=""))
        page.goto("http://audit.test/")
        with pytest.raises(AssertionError) as found:
            audit(page)
        assert "image-alt (critical)" in str(found.value) and "label (critical)" in str(found.value)
        with pytest.raises(AssertionError) as problems:
            watch.assert_clean()
        assert "404 GET http://audit.test/a.png" in str(problems.value) and "broken" in str(problems.value)


def test_the_accessibility_audit_looks_inside_frames():
    """The tool runs in the LMS's iframe: a violation inside a frame fails the audit though its page is clean."""
    outer = ('<!doctype html><html lang="en"><head><title>LMS</title></head><body><main>'
             '<iframe src="http://audit.test/tool" title="tool"></iframe></main></body></html>')
    tool = ('<!doctype html><html lang="en"><head><title>tool</title></head><body><main>'
            '<input type="text"></main></body></html>')
    with chromium() as (browser, _watch):
        page = browser.new_page()
        page.route("http://audit.test/", lambda route: route.fulfill(body=outer, content_type="text/html"))
        page.route("http://audit.test/tool", lambda route: route.fulfill(body=tool, content_type="text/html"))
        page.goto("http://audit.test/")
        page.frames[-1].wait_for_load_state("load")
        with pytest.raises(AssertionError) as found:
            audit(page)
        assert "http://audit.test/tool: label (critical)" in str(found.value)
        assert "http://audit.test/: " not in str(found.value)  # each frame once, by its own axe


def test_a_student_whose_question_waits_for_the_model_is_told_so(celery_worker, web_server, stub_llm, settings):
    """Every slot of the model server is taken (tutor.inference.capacity): the page says how many questions are ahead,
    and the answer follows once a slot frees."""
    from contextlib import ExitStack

    from tutor.inference import capacity

    course = demo_course_with(("systemstart.md", INIT_TEXT))
    point_tutor_at(course, stub_llm.url)
    stub_llm.reply = "Der Init-Prozess hat die PID 1 [1]."
    with chromium() as (browser, watch), ExitStack() as held:
        capacity.set_slots(stub_llm.url, 1)  # one slot for every process
        held.callback(capacity.set_slots, stub_llm.url, None)
        held.enter_context(capacity.slot(stub_llm.url, capacity.CHAT))
        page = browser.new_page()
        page.goto(f"{web_server}/lti/test-platform/")
        page.locator('a[href$="?user=student-1"]').click()
        page.wait_for_url(f"{web_server}/c/{course.pk}/*", timeout=30000)
        page.fill("#question", "Welche Prozessnummer hat der Init-Prozess?")
        page.click("#ask")
        page.wait_for_function("() => { const b = document.querySelector('.msg.assistant .body.streaming');"
                               " return b && b.textContent.includes('Fragen davor: 1'); }", timeout=30000)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "tutor_chat_waiting.png"), full_page=True)
        held.close()  # the slots free up: the answer comes
        page.locator(".msg.assistant a.cite").first.wait_for(timeout=30000)
        assert "PID 1" in page.locator(".msg.assistant").last.inner_text()
        watch.assert_clean()


def test_the_quotes_from_the_course_texts_show_before_the_model_s_text(celery_worker, web_server, stub_llm):
    """Quotes and explanation: the tool's quoted sentence is on the page while the model has not said a word; the
    explanation follows below it; the quote's link opens its passage with the sentence highlighted."""
    from tutor.models import TutorConfig

    course = demo_course_with(("systemstart.md", INIT_TEXT))
    point_tutor_at(course, stub_llm.url, answer_mode=TutorConfig.BOTH)
    stub_llm.reply = "Das ist die Nummer des ersten Prozesses [1]."
    stub_llm.first_token_delay = 6  # a slow model on 2 cores
    with chromium() as (browser, watch):
        page = browser.new_page()
        page.goto(f"{web_server}/lti/test-platform/")
        page.locator('a[href$="?user=student-1"]').click()
        page.wait_for_url(f"{web_server}/c/{course.pk}/*", timeout=30000)
        page.fill("#question", "Welche Prozessnummer hat der Init-Prozess?")
        page.click("#ask")
        quote = page.locator(".msg.assistant .quotes blockquote").first
        quote.wait_for(timeout=30000)
        assert "Prozessnummer 1 (PID 1)" in quote.inner_text()
        assert "Nummer des ersten" not in page.locator(".msg.assistant").last.inner_text()  # no model text yet
        audit(page)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "tutor_chat_quotes_first.png"), full_page=True)
        page.locator(".msg.assistant a.cite").first.wait_for(timeout=30000)  # the explanation arrived
        answer = page.locator(".msg.assistant").last
        assert "Prozessnummer 1 (PID 1)" in answer.locator(".quotes blockquote").first.inner_text()
        assert "Nummer des ersten Prozesses" in answer.locator(".body").inner_text()
        answer.locator(".quotes figcaption a").first.click()
        page.wait_for_selector("#passage mark#quote", timeout=15000)
        assert "Prozessnummer 1 (PID 1)" in page.locator("#passage mark#quote").inner_text()
        audit(page)
        watch.assert_clean()


@pytest.fixture
def notice_server(worker_env, tmp_path):
    """The web server with the AI-use notice required (as in production; the test suite's default is off)."""
    from tests.support import web_server_process

    with web_server_process(dict(worker_env, AI_NOTICE_REQUIRED="1"), tmp_path / "web.log") as (url, _port, _p):
        yield url


ASK_ANYWAY = """async (url) => {
  const form = new FormData();
  form.append('text', 'Welche Prozessnummer hat der Init-Prozess?');
  form.append('csrfmiddlewaretoken', document.querySelector('input[name=csrfmiddlewaretoken]').value);
  return (await fetch(url, {method: 'POST', body: form})).status;
}"""


def test_a_students_first_launch_shows_the_ai_notice_and_the_chat_works_only_after_accepting(
        celery_worker, notice_server, stub_llm):
    """The notice (tutor/chat/notice.py) on the first launch: the chat is not there and a question sent anyway is
    refused; accepting records it for the person and opens the chat; the next launch, in another browser, goes
    straight to the chat."""
    from courses.models import Membership
    from tests.test_lti_frame_session import in_thread
    from tutor.chat.models import AiNoticeAcceptance, Message

    course = demo_course_with(("systemstart.md", INIT_TEXT))
    point_tutor_at(course, stub_llm.url)
    stub_llm.reply = "Der Init-Prozess hat die PID 1 [1]."
    with chromium() as (browser, watch):
        page = browser.new_page()
        page.goto(f"{notice_server}/lti/test-platform/")
        page.locator('a[href$="?user=student-1"]').click()
        page.wait_for_url(f"{notice_server}/c/{course.pk}/*", timeout=30000)
        page.locator("#accept-notice").wait_for(timeout=30000)
        notice = page.locator(".ai-notice").inner_text()
        assert "Bevor Sie beginnen" in notice and "falsch" in notice  # what it is, that it can be wrong (German)
        assert page.locator(".ai-notice a[href$=\"/privacy/processing-record\"]").count() == 1
        assert page.locator("#question").count() == 0  # no chat before accepting
        audit(page)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "tutor_ai_notice.png"), full_page=True)
        assert page.evaluate(ASK_ANYWAY, f"/c/{course.pk}/ask/") == 403  # a question sent anyway is refused
        refusals = [p for p in watch.problems if "/ask/" in p]
        assert refusals and all("403" in p for p in refusals)
        watch.problems = [p for p in watch.problems if "/ask/" not in p]  # the one refusal this test caused
        student = in_thread(lambda: Membership.objects.get(course=course, role=Membership.LEARNER).user)
        assert not in_thread(lambda: AiNoticeAcceptance.objects.filter(user=student).exists())
        assert not in_thread(lambda: Message.objects.filter(conversation__user=student).exists())

        page.locator("#accept-notice button[type=submit]").click()
        page.locator("#question").wait_for(timeout=30000)
        assert in_thread(lambda: AiNoticeAcceptance.objects.filter(user=student).count()) == 1
        page.fill("#question", "Welche Prozessnummer hat der Init-Prozess?")
        page.click("#ask")
        page.locator(".msg.assistant a.cite").first.wait_for(timeout=30000)  # the chat works
        assert "PID 1" in page.locator(".msg.assistant").last.inner_text()
        watch.assert_clean()

    with chromium() as (browser, watch):  # the next launch, in another browser: recorded per person, not per browser
        page = browser.new_page()
        page.goto(f"{notice_server}/lti/test-platform/")
        page.locator('a[href$="?user=student-1"]').click()
        page.wait_for_url(f"{notice_server}/c/{course.pk}/*", timeout=30000)
        page.locator("#question").wait_for(timeout=30000)
        assert page.locator("#accept-notice").count() == 0
        watch.assert_clean()
    assert in_thread(lambda: AiNoticeAcceptance.objects.filter(user=student).count()) == 1
