"""The rooms of the code stay as the README's layout says: lti knows LTI and nothing of tutoring, every course
page passes the one access rule, and every form of a course page carries its CSRF token through the one tag."""

import ast
from pathlib import Path

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

ROOT = Path(__file__).resolve().parent.parent


def imported_modules(path):
    """The modules a Python file imports (absolute names)."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


@pytest.mark.parametrize("path", sorted((ROOT / "lti").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_of_lti_imports_tutor(path):
    assert not [m for m in imported_modules(path) if m == "tutor" or m.startswith("tutor.")]


def _patterns(resolver, prefix=""):
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            yield from _patterns(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry.callback


def _guarded(view):
    """A page wrapped in courses.access.course_member, or an API view (DRF's, or an async one documented by a DRF
    view, see config.api.event_stream_view) whose permissions are courses.access.CourseAccess."""
    from courses.access import CourseAccess

    return hasattr(view, "course_access") or CourseAccess in getattr(getattr(view, "cls", None), "permission_classes", ())


def test_every_course_page_passes_the_one_access_rule():
    """Each URL with a course id is served by a view wrapped in courses.access.course_member (sync or async), or by an
    API view under courses.access.CourseAccess."""
    course_urls = [(route, view) for route, view in _patterns(get_resolver()) if "course_id" in route]
    assert len(course_urls) > 40
    unguarded = [route for route, view in course_urls if not _guarded(view)]
    assert not unguarded


@pytest.mark.parametrize("path", sorted(p for p in ROOT.glob("*/*.py") if p.parts[-2] in {"lti", "courses", "tutor"}),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_but_the_access_rule_reads_tickets_or_memberships_for_a_request(path):
    if path.relative_to(ROOT).as_posix() == "courses/access.py":
        return
    text = path.read_text()
    assert "resolve_membership" not in text and "redeem_ticket" not in text and "session_key" not in text.replace(
        "request.session.session_key", "")


APP_TEMPLATES = sorted([*(ROOT / "courses" / "templates").rglob("*.html"), *(ROOT / "tutor" / "templates").rglob("*.html")])


@pytest.mark.parametrize("path", APP_TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_form_of_a_course_page_is_written_by_the_one_tag(path):
    html = path.read_text()
    assert "<form" not in html, "a course page's form: {% course_form %} writes it with its CSRF token"
    assert "csrf" not in html and "session" not in html.lower().replace("session_config", "")
