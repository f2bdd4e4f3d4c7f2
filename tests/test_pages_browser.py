"""Every button of every page, clicked in headless Chromium inside the built-in test platform's iframe (as Moodle
shows the tool): the lecturer's documents (upload, replace, re-index, delete), tutor settings, usage, API tokens
(make, revoke), questions (generate, approve, reject, edit, release, export as Moodle XML and GIFT); the student's
chat (ask, sources, feedback, new and earlier conversations, try again) and practice (answer, result, try again).

Real launches, the real uvicorn server and Celery worker; the stub LLM answers deterministically. Any response
with status 400 or more, any console error (a script the Content-Security-Policy blocks is one) and any serious
or critical accessibility violation fails the test (issue 11: the document buttons answered 403).
"""

import json

import pytest

from tests.support import ARTIFACTS, INIT_TEXT, audit, chromium, demo_course_with, point_tutor_at
from tutor.models import Attempt, Feedback, QuestionSet

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

ANSWER = "Der Init-Prozess hat die **PID 1** [1]."
QUESTIONS = [
    {"stem": "Welche Prozessnummer hat der Init-Prozess?", "options": ["0", "1", "42"], "answer": 1,
     "explanation": "Der Init-Prozess hat die PID 1.", "source": 1},
    {"stem": "Welches Init-System ist unter Debian voreingestellt?", "options": ["SysV", "systemd", "upstart"],
     "answer": 1, "explanation": "systemd ist voreingestellt.", "source": 1},
    {"stem": "Wer startet den Init-Prozess?", "options": ["Der Kernel", "Der Benutzer", "APT"], "answer": 0,
     "explanation": "Der Kernel startet ihn beim Systemstart.", "source": 1},
]


def stub_reply(body):
    """Questions as JSON for a generation (it asks for a JSON schema), else the chat answer."""
    return json.dumps({"questions": QUESTIONS}) if "response_format" in body else ANSWER


def open_as(page, web_server, who):
    """The test platform's course page as this demo person; returns the frame of the tool, launched inside it."""
    page.goto(f"{web_server}/lti/test-platform/course?user={who}")
    tool = page.frame_locator("#lti-tool")
    tool.locator("#question").wait_for(timeout=60000)  # the tutor's course page
    return tool


def settle(page):
    """Wait until the page and its frames have loaded; fail on any failed response or console error so far, then
    audit them."""
    page.wait_for_load_state("load")
    for frame in page.frames:
        frame.wait_for_load_state("load")
    page.watch.assert_clean()
    audit(page)


def act(page, control):
    """Click a link or a form's button in the tool's frame and wait for the page it leads to (then audit it)."""
    with page.frame(name="lti-tool").expect_navigation(timeout=90000):
        control.click()
    settle(page)


def nav(page, tool, path):
    """Follow the tool's navigation link whose URL contains path."""
    act(page, tool.locator(f'header a[href*="{path}"]').first)


def test_a_lecturer_and_a_student_use_every_page_inside_the_lms_frame(celery_worker, web_server, stub_llm, tmp_path):
    course = demo_course_with(("systemstart.md", INIT_TEXT))
    point_tutor_at(course, stub_llm.url)
    stub_llm.reply = stub_reply
    notes = tmp_path / "notizen.md"
    notes.write_text("# Notizen\n\n## Dienste\n\nDienste startet systemd in der richtigen Reihenfolge.\n")
    newer = tmp_path / "notizen-neu.md"
    newer.write_text("# Notizen\n\n## Dienste\n\nDienste startet und stoppt systemd.\n")
    ARTIFACTS.mkdir(exist_ok=True)

    with chromium() as (browser, watch):
        page = browser.new_page()
        page.watch = watch
        page.on("dialog", lambda dialog: dialog.accept())  # the delete button asks first
        tool = open_as(page, web_server, "lecturer")
        settle(page)

        # --- course texts: upload, replace, re-index, delete ------------------------------------------------
        nav(page, tool, "/documents/")
        tool.locator("#upload input[type=file]").set_input_files(str(notes))
        tool.locator("#upload input[name=title]").fill("Notizen")
        act(page, tool.locator("#upload button[type=submit]"))
        row = tool.locator("#documents tr", has_text="Notizen")
        row.locator("form.replace input[type=file]").set_input_files(str(newer))
        act(page, row.locator("form.replace button[type=submit]"))
        act(page, row.locator("form.reindex button"))
        act(page, row.locator("form.delete button"))
        assert tool.locator("p.notice", has_text="Notizen").count() == 1
        assert tool.locator("#documents tr", has_text="Notizen").count() == 0
        page.screenshot(path=str(ARTIFACTS / "pages_documents.png"), full_page=True)

        # --- tutor settings and usage ----------------------------------------------------------------------
        nav(page, tool, "/c/")  # back to the course
        nav(page, tool, "/settings/")
        tool.locator("#tutor-settings textarea[name=welcome_message]").fill("Willkommen im Demokurs!")
        act(page, tool.locator("#tutor-settings button[type=submit]"))
        assert tool.locator("p.notice").count() == 1
        nav(page, tool, "/usage/")

        # --- API tokens: make one (shown once), revoke it ------------------------------------------------------
        nav(page, tool, "/api-tokens/")
        tool.locator("#new-api-token input[name=name]").fill("Portal-Chatbot")
        act(page, tool.locator("#new-api-token button[type=submit]"))
        assert tool.locator("#new-token input").input_value().startswith("ctk_")
        act(page, tool.locator("#api-tokens form.revoke button"))  # after the confirmation dialog
        assert tool.locator("#api-tokens td.state", has_text="widerrufen").count() == 1  # German browser
        nav(page, tool, "/c/")  # back to the course

        # --- questions: generate, approve, reject, edit, release, export -----------------------------------
        nav(page, tool, "/questions/")
        section = tool.locator("#generate option", has_text="Der Init-Prozess").first.get_attribute("value")
        tool.locator("#generate select[name=section]").select_option(value=section)
        tool.locator("#generate input[name=count]").fill("3")
        act(page, tool.locator("#generate button[type=submit]"))
        tool.locator(".question").first.wait_for(timeout=90000)  # the page reloads once they are generated
        settle(page)
        assert tool.locator(".question").count() == 3
        act(page, tool.locator(".question").nth(0).locator("form.review button[value=approved]"))
        act(page, tool.locator(".question").nth(1).locator("form.review button[value=rejected]"))
        edit = tool.locator(".question").nth(2)
        edit.locator("details.edit summary").click()
        edit.locator("form.edit textarea[name=stem]").fill("Wer startet beim Systemstart den Init-Prozess?")
        act(page, edit.locator("form.edit button[type=submit]"))
        assert tool.locator(".question", has_text="Wer startet beim Systemstart").count() == 1
        act(page, tool.locator(".question").nth(2).locator("form.review button[value=approved]"))
        act(page, tool.locator("#release button[type=submit]"))
        for link in ("export.xml", "export.gift"):
            with page.expect_download() as download:
                tool.locator(f'a[href*="{link}"]').click()
            assert download.value.suggested_filename.endswith((".xml", ".gift.txt"))
        act(page, tool.locator('main a[href*="/practice/"]').first)  # the set as a student sees it
        assert tool.locator("#practice fieldset").count() == 2
        page.screenshot(path=str(ARTIFACTS / "pages_questions.png"), full_page=True)
        watch.assert_clean()

        # --- the student: chat ------------------------------------------------------------------------------
        tool = open_as(page, web_server, "student-1")
        assert tool.locator(".welcome").inner_text().startswith("Willkommen im Demokurs!")
        settle(page)
        tool.locator("#question").fill("Welche Prozessnummer hat der Init-Prozess?")
        tool.locator("#ask").click()
        answer = tool.locator(".msg.assistant", has=tool.locator("a.cite")).last
        answer.wait_for(timeout=60000)
        settle(page)
        answer.locator(".feedback button.up").click()
        answer.locator(".feedback input").fill("Genau richtig")
        answer.locator(".feedback button").nth(2).click()
        answer.locator(".feedback .muted").wait_for(timeout=30000)
        act(page, answer.locator("a.cite").first)
        assert "erste Prozess" in tool.locator("#passage").inner_text()
        act(page, tool.locator('header a[href*="/c/"]').first)  # back to the course

        stub_llm.fail = "500"  # the model server breaks: the answer fails and offers "try again"
        tool.locator("#new-conversation").click()
        tool.locator("#question").fill("Wie installiert man Pakete mit apt?")
        tool.locator("#ask").click()
        retry = tool.locator(".msg.assistant.failed button.retry")
        retry.wait_for(timeout=90000)
        settle(page)
        stub_llm.fail = None
        retry.click()
        tool.locator(".msg.assistant a.cite").first.wait_for(timeout=60000)
        settle(page)
        tool = open_as(page, web_server, "student-1")  # launched again: the latest conversation, and the earlier one
        tool.locator("details.earlier summary").click()
        act(page, tool.locator("details.earlier a").first)  # the first conversation again
        assert tool.locator(".msg.user", has_text="Welche Prozessnummer").count() == 1

        # --- the student: practice ------------------------------------------------------------------------------
        nav(page, tool, "/practice/")
        act(page, tool.locator("#practice-sets a").first)
        for question in range(tool.locator("#practice fieldset").count()):
            tool.locator("#practice fieldset").nth(question).locator("input[type=radio]").first.check()
        act(page, tool.locator("#practice button[type=submit]"))
        assert tool.locator("#score").count() == 1
        act(page, tool.locator("main a.button.secondary").last)  # try again
        assert tool.locator("#practice").count() == 1
        act(page, tool.locator('main a[href*="/attempt/"]').first)  # the earlier attempt's result
        act(page, tool.locator("a.source").first)
        assert "erste Prozess" in tool.locator("#passage").inner_text()
        page.screenshot(path=str(ARTIFACTS / "pages_practice.png"), full_page=True)
        watch.assert_clean()

    released = QuestionSet.objects.get(course=course)
    assert released.is_released and released.questions.approved().count() == 2
    assert Attempt.objects.filter(question_set=released).count() == 1
    assert Feedback.objects.get().comment == "Genau richtig"


OVERFLOW = """() => {
  const root = document.documentElement, width = root.clientWidth;
  const outside = [...document.querySelectorAll('header a, header strong, main *')]
    .filter(e => e.getClientRects().length && (e.getBoundingClientRect().left < -1 ||
                                               e.getBoundingClientRect().right > width + 1))
    .filter(e => !e.closest('pre, .msg .body pre'))  /* long code scrolls inside its box */
    .map(e => e.tagName + (e.id ? '#' + e.id : '') + (e.className ? '.' + e.className : ''));
  return {scroll: root.scrollWidth - width, outside: outside.slice(0, 5)};
}"""


@pytest.mark.parametrize("width", [480, 700, 850, 1000])
def test_every_page_fits_the_iframe_widths_moodle_gives(celery_worker, web_server, stub_llm, width):
    """Moodle gives the tool 700-1000 px (less with its course index drawer open): no page of the lecturer or the
    student is wider than its iframe, and no link of the header is cut off (in Moodle the menu read "actice")."""
    course = demo_course_with(("systemstart.md", INIT_TEXT))
    point_tutor_at(course, stub_llm.url)
    ARTIFACTS.mkdir(exist_ok=True)
    problems = {}
    with chromium() as (browser, watch):
        page = browser.new_page()
        page.set_viewport_size({"width": width + 40, "height": 900})
        page.watch = watch
        for who, paths in (("lecturer", ["/documents/", "/settings/", "/usage/", "/questions/"]),
                           ("student-1", ["/practice/"])):
            tool = open_as(page, web_server, who)
            page.evaluate(f"document.getElementById('lti-tool').style.width = '{width}px'")
            frame = page.frame(name="lti-tool")
            for path in ["home", *paths]:
                if path != "home":
                    nav(page, tool, path)
                    frame = page.frame(name="lti-tool")
                found = frame.evaluate(OVERFLOW)
                if found["scroll"] > 1 or found["outside"]:
                    problems[f"{who} {path}"] = found
                if width == 700:
                    name = path.strip("/").replace("/", "_") or "chat"
                    page.screenshot(path=str(ARTIFACTS / f"width_{width}_{who}_{name}.png"))
                if path != "home":
                    nav(page, tool, "/c/")
        watch.assert_clean()
    assert not problems, problems
