"""Every page's Content-Security-Policy forbids inline script, inline event handlers and inline styles; the pages'
scripts and styles are static files, served by the web app itself."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = sorted(p for p in ROOT.glob("*/templates/**/*.html") if ".venv" not in p.parts) + sorted(
    (ROOT / "templates").glob("**/*.html"))

pytestmark = pytest.mark.django_db


def directives(response):
    """The policy as {directive: value}."""
    pairs = (d.strip().split(" ", 1) for d in response["Content-Security-Policy"].split(";") if d.strip())
    return {name: value for name, value in pairs}


def test_every_page_gets_a_policy_without_inline_script_or_style(client):
    for url in ("/", "/lti/test-platform/", "/health/live", "/admin/login/", "/no-such-page/"):
        policy = directives(client.get(url))
        assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'", url
        assert policy["default-src"] == "'self'" and policy["object-src"] == "'none'", url
        assert "unsafe-inline" not in str(policy) and "unsafe-eval" not in str(policy), url


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_template_has_inline_script_style_or_event_handler(template):
    html = template.read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline <script>"
    assert "<style" not in html and not re.search(r"\sstyle=", html), "inline style"
    assert not re.search(r"\son[a-z]+=", html), "inline event handler"


def test_static_files_are_served_by_the_web_app(client):
    script = client.get("/static/tutor/chat.js")
    assert script.status_code == 200 and script["Content-Type"].startswith("text/javascript")
    assert b"readEvents" in script.content and "max-age" in script["Cache-Control"]
    assert client.get("/static/base/base.css")["Content-Type"].startswith("text/css")
    again = client.get("/static/tutor/chat.js", HTTP_IF_MODIFIED_SINCE=script["Last-Modified"])
    assert again.status_code == 304
    assert client.get("/static/../config/settings.py").status_code == 404
    assert client.get("/static/tutor/missing.js").status_code == 404
