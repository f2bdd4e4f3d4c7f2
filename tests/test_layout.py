"""The rooms of the code stay as the README's layout says: lti knows LTI and nothing of tutoring, every course
page passes the one access rule, every form of a course page carries its CSRF token through the one tag, tutor/
is three rooms (chat, questions, inference) that say what they hold, and only courses queries chunks and sections."""

import ast
import re
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
             "relay", "stream", "retention", "usage", "payloads", "checks", "notice", "quotas",
             "quotes"},
    "questions": {"models", "views", "practice_views", "urls", "api", "tasks", "generation", "items", "item_checks",
                  "imports", "exports", "item_stats", "practice", "review", "placements", "answer_first",
                  "open_feedback", "spans", "morphology", "textbuilt", "quotas"},
    "inference": {"client", "capacity", "rewriting", "prompts", "health"},
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
    assert len(names) == 15
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


# --- Index builds on the chunks table do not lock it -------------------------------------------------------

# Applied before the rule (a fresh install builds them on an empty table); every later migration follows it.
CHUNK_INDEX_MIGRATIONS_BEFORE_THE_RULE = {"courses/migrations/0002_documents_sections_chunks.py",
                                          "courses/migrations/0003_chunk_dimension_hnsw.py",
                                          "courses/migrations/0005_chunk_course_lexemes.py"}


def locking_chunk_index_changes(source):
    """What a migration's source does to the chunks table's indexes while locking it: AddIndex or RemoveIndex on
    courses' Chunk, CREATE or DROP INDEX on courses_chunk without CONCURRENTLY, or a concurrent change in a
    migration that is atomic (PostgreSQL builds an index concurrently only outside a transaction)."""
    tree = ast.parse(source)
    found, concurrent = [], False
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            model = next((k.value.value for k in node.keywords if k.arg == "model_name"
                          and isinstance(k.value, ast.Constant)), "")
            if model.lower() == "chunk" and name in ("AddIndex", "RemoveIndex"):
                found.append(f"{name} on chunk (use {name}Concurrently)")
            concurrent |= name in ("AddIndexConcurrently", "RemoveIndexConcurrently")
        elif isinstance(node, (ast.Constant, ast.JoinedStr)) and not isinstance(getattr(node, "value", ""), bytes):
            text = node.value if isinstance(node, ast.Constant) else "".join(
                str(v.value) if isinstance(v, ast.Constant) else "{}" for v in node.values)
            if not isinstance(text, str):
                continue
            sql = " ".join(text.upper().split())
            if re.search(r"\b(CREATE (UNIQUE )?|DROP )INDEX\b", sql) and (
                    "COURSES_CHUNK" in sql or sql.startswith("DROP INDEX")):
                if "CONCURRENTLY" in sql:
                    concurrent = True
                elif "COURSES_CHUNK" in sql:
                    found.append(f"{sql[:60]}... without CONCURRENTLY")
    atomic_off = any(isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "atomic" for t in node.targets)
                     and isinstance(node.value, ast.Constant) and node.value.value is False for node in ast.walk(tree))
    if concurrent and not atomic_off:
        found.append("a concurrent index change needs atomic = False on the Migration")
    return found


MIGRATIONS = sorted(p for p in ROOT.glob("*/migrations/0*.py"))


@pytest.mark.parametrize("path", MIGRATIONS, ids=lambda p: str(p.relative_to(ROOT)))
def test_index_changes_on_the_chunks_table_are_concurrent(path):
    """docs/upgrade.md: an upgrade never locks a large installation's chunks table while an index is built."""
    if str(path.relative_to(ROOT)) in CHUNK_INDEX_MIGRATIONS_BEFORE_THE_RULE:
        return
    assert locking_chunk_index_changes(path.read_text()) == []


def test_the_chunk_index_rule_sees_what_locks():
    """The rule above finds the locking forms and lets the concurrent ones pass (and the old ones are still
    named, so the list of exceptions cannot go stale)."""
    locking = """
class Migration(migrations.Migration):
    operations = [migrations.AddIndex(model_name='chunk', index=models.Index(fields=['x'], name='x')),
                  migrations.RunSQL(f"CREATE INDEX chunk_{d} ON courses_chunk (y)")]
"""
    atomic = """
class Migration(migrations.Migration):
    operations = [AddIndexConcurrently(model_name='chunk', index=models.Index(fields=['x'], name='x'))]
"""
    fine = """
class Migration(migrations.Migration):
    atomic = False
    operations = [AddIndexConcurrently(model_name='chunk', index=models.Index(fields=['x'], name='x')),
                  migrations.RunSQL("CREATE INDEX CONCURRENTLY chunk_y ON courses_chunk (y)",
                                    "DROP INDEX CONCURRENTLY chunk_y")]
"""
    assert len(locking_chunk_index_changes(locking)) == 2
    assert locking_chunk_index_changes(atomic) == ["a concurrent index change needs atomic = False on the Migration"]
    assert locking_chunk_index_changes(fine) == []
    for name in CHUNK_INDEX_MIGRATIONS_BEFORE_THE_RULE:
        assert locking_chunk_index_changes((ROOT / name).read_text()), name


# --- config/ is the ground and knows no app --------------------------------------------------------------------

APPS = ("lti", "courses", "tutor")
CONFIG_MAY_IMPORT_APPS = {"config/urls.py", "config/api_urls.py"}  # the URL maps include the apps' URLs and APIs

def app_imports(path):
    """The modules of lti, courses and tutor a file imports, at the top or inside a function."""
    return {m for m in imported_modules(path) if m.split(".")[0] in APPS}


def test_config_imports_no_app_outside_the_url_maps():
    """config/ is the ground: it imports lti, courses or tutor nowhere but in the URL maps, at the top or inside a
    function; what only an app knows it registers in its AppConfig.ready() (config.privacy, config.health,
    config.metrics, config.framing, config.middleware.TICKETS)."""
    found = {str(p.relative_to(ROOT)): app_imports(p) for p in sorted((ROOT / "config").rglob("*.py"))}
    assert {name for name in found if found[name]} <= CONFIG_MAY_IMPORT_APPS
    assert found["config/api_urls.py"]  # the rule sees the imports it allows there
    assert app_imports(ROOT / "config" / "api.py") == set()  # problems come from config.errors.ProblemError


def test_the_apps_fill_the_registries_of_config():
    """What config/ no longer imports reaches it through the registries the apps fill in AppConfig.ready()."""
    from config import framing, health, metrics, middleware, privacy
    from courses.access import redeem_ticket
    from lti.framing import platform_origins
    from tutor.chat.retention import purge_conversations
    from tutor.inference.health import check_inference, slot_gauges

    assert list(health.CHECKS) == ["database", "redis", "workers", "inference", "periodic"]
    assert health.CHECKS["inference"] is check_inference and slot_gauges in metrics.COLLECTORS
    assert [origins for origins, _cached in framing.PROVIDERS] == [platform_origins]
    assert middleware.TICKETS["redeem"] is redeem_ticket
    assert purge_conversations in privacy.PURGES and len(privacy.FINDERS) == 1
    assert {"lti.ltiuser", "courses.membership", "tutor.conversation"} <= set(privacy.PERSONAL_TABLES)


def test_the_apps_refusals_are_problems_the_api_maps_without_knowing_them():
    """Every domain error the API answers derives from config.errors.ProblemError (config.api maps the base)."""
    from config.errors import ProblemError
    from courses.documents import UploadError
    from tutor.chat.conversations import ChatError, RateLimited
    from tutor.questions.generation import GenerationError, RevisionError
    from tutor.questions.imports import QuestionImportError
    from tutor.questions.practice import PracticeError
    from tutor.questions.review import QuestionError

    for error in (UploadError, ChatError, GenerationError, RevisionError, QuestionImportError, PracticeError,
                  QuestionError):
        assert issubclass(error, ProblemError) and error.status == 400, error
    assert issubclass(RateLimited, ProblemError) and (RateLimited.status, RateLimited.code) == (429, "throttled")
