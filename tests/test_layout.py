"""The rooms of the code stay as the README's layout says: lti knows LTI and nothing of tutoring, every course
page passes the one access rule, every form of a course page carries its CSRF token through the one tag, tutor/
is three rooms (chat, questions, inference) that say what they hold, and only courses queries chunks and sections."""

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


APP_MODULES = sorted(p for app in ("lti", "courses", "tutor") for p in (ROOT / app).rglob("*.py")
                     if "migrations" not in p.parts)


@pytest.mark.parametrize("path", APP_MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_but_the_access_rule_reads_tickets_or_memberships_for_a_request(path):
    if path.relative_to(ROOT).as_posix() in {"courses/access.py", "courses/templatetags/access.py"}:
        return  # the access rule, and its side in templates
    text = path.read_text()
    assert "resolve_membership" not in text and "redeem_ticket" not in text and "session_key" not in text.replace(
        "request.session.session_key", "")


APP_TEMPLATES = sorted([*(ROOT / "courses" / "templates").rglob("*.html"), *(ROOT / "tutor" / "templates").rglob("*.html")])


@pytest.mark.parametrize("path", APP_TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_form_of_a_course_page_is_written_by_the_one_tag(path):
    html = path.read_text()
    assert "<form" not in html, "a course page's form: {% course_form %} writes it with its CSRF token"
    assert "csrf" not in html and "session" not in html.lower().replace("session_config", "")


# --- tutor/: one app in three rooms (README's layout) ---------------------------------------------------------

ROOMS = {
    "chat": {"models", "views", "urls", "api", "tasks", "conversations", "answering", "answerability", "relevance",
             "relay", "stream", "retention", "usage", "payloads", "checks"},
    "questions": {"models", "views", "practice_views", "urls", "api", "tasks", "generation", "items", "item_checks",
                  "imports", "exports", "item_stats", "practice", "review", "placements"},
    "inference": {"client", "capacity", "rewriting", "prompts"},
}
TUTOR_TOP = {"__init__", "admin", "api", "apps", "forms", "models", "tasks", "urls"}


def _docstring(path):
    return ast.get_docstring(ast.parse(path.read_text()))


def _readme_row(path):
    """The README layout table's row for a folder (`tutor/chat/`), its text."""
    rows = [line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith(f"| `{path}` |")]
    assert len(rows) == 1, f"README's layout has no single row for {path}"
    return rows[0]


@pytest.mark.parametrize("room", sorted(ROOMS))
def test_each_room_of_tutor_holds_what_the_readme_says(room):
    """Each room is a package that says what it holds, with exactly the modules the README's row names."""
    folder = ROOT / "tutor" / room
    assert _docstring(folder / "__init__.py")
    modules = {p.stem for p in folder.glob("*.py")} - {"__init__"}
    assert modules == ROOMS[room]
    row = _readme_row(f"tutor/{room}/")
    assert not [m for m in modules if f"`{m}.py`" not in row]


def test_tutor_keeps_at_its_top_only_what_the_rooms_share():
    """Everything of one concern lives in its room; the top of tutor/ has the shared settings model, the app's
    configuration and the modules that gather the rooms' (models, urls, tasks)."""
    assert {p.stem for p in (ROOT / "tutor").glob("*.py")} == TUTOR_TOP
    assert {p.name for p in (ROOT / "tutor").iterdir() if p.is_dir() and (p / "__init__.py").exists()} == {
        *ROOMS, "management", "migrations"}


def test_tutor_models_names_every_model_and_keeps_each_importable():
    """tutor/models.py's docstring names every model of the app, and ``from tutor.models import X`` works for each
    (migrations and the API schema's enum paths use it)."""
    from django.apps import apps

    import tutor.models

    names = {model.__name__ for model in apps.get_app_config("tutor").get_models()}
    assert len(names) == 12
    assert not [n for n in names if n not in _docstring(ROOT / "tutor" / "models.py")]
    assert not [n for n in names if not hasattr(tutor.models, n)]


def test_url_patterns_are_defined_only_in_urls_modules():
    """Views define views; each room's urls.py (and tutor/urls.py, which includes them) says where they are."""
    defining = [p.relative_to(ROOT).as_posix() for p in (ROOT / "tutor").rglob("*.py")
                if p.name != "urls.py" and "urlpatterns" in p.read_text()]
    assert not defining


def test_the_tutor_app_config_is_not_named_like_a_model():
    from django.apps import apps

    from tutor.models import TutorConfig

    assert type(apps.get_app_config("tutor")).__name__ == "TutorAppConfig" != TutorConfig.__name__


def _queries_chunks_or_sections(path):
    """Where the file imports Chunk or Section from courses.models, or runs a query on them (``X.objects``)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "courses.models":
            found += [f"imports {a.name}" for a in node.names if a.name == "Chunk"]
        if (isinstance(node, ast.Attribute) and node.attr == "objects" and isinstance(node.value, ast.Name)
                and node.value.id in {"Chunk", "Section"}):
            found.append(f"queries {node.value.id}")
    return found


@pytest.mark.parametrize("path", sorted((ROOT / "tutor").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_only_courses_queries_chunks_and_sections(path):
    """Chunks and sections are courses' (courses.retrieval, courses.sections): tutor asks those functions."""
    assert not _queries_chunks_or_sections(path)
