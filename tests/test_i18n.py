"""German UI: real pages render in German when the browser asks for it, and every catalog is complete.

The pages are requested through Django's test client with ``Accept-Language: de`` (what a German
Moodle's browser sends); ``LocaleMiddleware`` picks the language, the compiled ``.mo`` files supply
the words. The catalog tests read every ``.po`` file of the project and compare it with its ``.mo``.
"""

import ast
import gettext
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import translation

from courses.models import Membership
from tests.support import make_member

ROOT = Path(__file__).resolve().parent.parent
SKIP_DIRS = {".venv", "var", "node_modules", ".git", "test-artifacts"}
PLACEHOLDER = re.compile(r"%\(\w+\)[sdif]|\{\w*\}")


def _german(client, url):
    """The page at url, asked for in German; returns the decoded body."""
    response = client.get(url, HTTP_ACCEPT_LANGUAGE="de")
    assert response.status_code == 200, response.content[:500]
    return response.content.decode()


def _english(client, url):
    """The same page asked for in English, to show that the German words come from translation."""
    response = client.get(url, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    return response.content.decode()


def _assert_german(html, german, english):
    """Each German string is on the page and none of the English originals is."""
    for text in german:
        assert text in html, f"German text missing: {text!r}"
    for text in english:
        assert text not in html, f"English text still shown: {text!r}"


def test_chat_page_is_german_for_a_student(client, course):
    """The student's chat page: headings, form, retention note and the chat script's strings."""
    _, token = make_member(course)
    client.cookies[settings.SESSION_COOKIE_NAME] = token  # signed in by the launch
    url = f"/c/{course.pk}/"
    html = _german(client, url)
    assert '<html lang="de">' in html
    german = ["Kurs-Tutor", "Ihre Frage", "Stellen Sie eine Frage zu den Kurstexten",
              "Ihre Unterhaltung wird", "nur f\u00fcr Sie sichtbar", "Sprache",
              # passed to the chat script as JSON (non-ASCII escaped there)
              "Hallo! Ich beantworte Fragen zu den Texten dieses Kurses", "Hilfreich", "Optionaler Kommentar (Ihre Lehrenden lesen ihn ohne Ihren Namen)"]
    english = ["Course tutor", "Your question", "Ask a question about the course texts",
               "Your conversation is kept", "Hello! I answer questions", "Not helpful", "Optional comment",
               "Thank you for your feedback", "The tutor is thinking"]
    _assert_german(html, german, english)
    _assert_german(_english(client, url), english[:3], german[:3])


def test_lecturer_pages_are_german(client, course):
    """The lecturer's course texts page (courses app) and tutor settings and usage pages."""
    _, token = make_member(course, role=Membership.INSTRUCTOR)
    client.cookies[settings.SESSION_COOKIE_NAME] = token  # signed in by the launch
    documents = _german(client, f"/courses/{course.pk}/documents/")
    _assert_german(documents, ["Kurstexte", "Zur\u00fcck zum Kurs", "Hochladen", "Noch keine Texte."],
                   ["Course texts", "Back to the course", "Upload", "No texts yet"])
    settings_page = _german(client, f"/c/{course.pk}/settings/")
    _assert_german(settings_page, ["Tutor-Einstellungen", "Antwortsprache", "Begr\u00fc\u00dfungstext", "Sichern"],
                   ["Tutor settings", "answer language", "welcome message", ">Save<"])
    usage = _german(client, f"/c/{course.pk}/usage/")
    _assert_german(usage, ["Nutzung des Tutors", "Was diese Seite zeigt", "Noch keine Fragen."],
                   ["Use of the tutor", "What this page shows", "No questions yet."])


def test_front_page_is_german(client, db):
    """The project's front page for the LMS administrator (project-level catalog)."""
    html = _german(client, "/")
    _assert_german(html, ["Kurs-Tutor", "F\u00fcr die Administration der Lernplattform",
                          "Dynamische Registrierung", "einmaligen Registrierungslink"],
                   ["For the LMS administrator", "one-time registration link"])
    _assert_german(_english(client, "/"), ["For the LMS administrator"], ["Administration der Lernplattform"])


def test_error_page_without_launch_is_german(client, course):
    """Opening a course page without a launch shows the lti error page, in German."""
    response = client.get(f"/c/{course.pk}/", HTTP_ACCEPT_LANGUAGE="de")
    assert response.status_code == 403
    _assert_german(response.content.decode(), ["Bitte \u00f6ffnen Sie dieses Werkzeug aus Ihrem Kurs"],
                   ["Please open this tool"])


def test_server_side_messages_are_german(db):
    """Messages produced in Python (errors, declines) are translated, placeholders intact."""
    with translation.override("de"):
        assert translation.gettext("Please type a question.") == "Bitte geben Sie eine Frage ein."
        text = translation.gettext("Your question is too long (at most %(limit)d characters).") % {"limit": 2000}
        assert text == "Ihre Frage ist zu lang (h\u00f6chstens 2000 Zeichen)."
        assert translation.ngettext("Your conversation is kept for %(days)s day, visible only to you; teachers "
                                    "see anonymised counts.", "Your conversation is kept for %(days)s days, "
                                    "visible only to you; teachers see anonymised counts.", 1).startswith(
            "Ihre Unterhaltung wird %(days)s Tag ")


# --- catalogs ------------------------------------------------------------------------------------


def _po_files():
    """Every .po catalog of the project (apps and project level), not those of installed packages."""
    found = []
    for path in sorted(ROOT.rglob("*.po")):
        if not SKIP_DIRS.intersection(path.relative_to(ROOT).parts):
            found.append(path)
    return found


def parse_po(path):
    """Entries of a .po file as dicts: msgctxt, msgid, msgid_plural, msgstr {index: text}, flags, obsolete."""
    entries = []
    for block in re.split(r"\n\s*\n", path.read_text(encoding="utf-8")):
        entry = {"msgctxt": None, "msgid": None, "msgid_plural": None, "msgstr": {}, "flags": set(),
                 "obsolete": False}
        field = None
        for line in block.splitlines():
            if line.startswith("#~"):
                entry["obsolete"] = True
                line = line[2:].strip()
            elif line.startswith("#,"):
                entry["flags"] |= {flag.strip() for flag in line[2:].split(",")}
                continue
            elif line.startswith("#") or not line.strip():
                continue
            if line.startswith('"'):
                text = ast.literal_eval(line)
            else:
                keyword, _, rest = line.partition(" ")
                text = ast.literal_eval(rest)
                field = ("msgstr", int(keyword[7:-1])) if keyword.startswith("msgstr[") else (
                    ("msgstr", 0) if keyword == "msgstr" else (keyword, None))
                if field[0] == "msgstr":
                    entry["msgstr"][field[1]] = ""
                else:
                    entry[field[0]] = ""
            if field[0] == "msgstr":
                entry["msgstr"][field[1]] += text
            else:
                entry[field[0]] += text
        if entry["msgid"] is not None:
            entries.append(entry)
    return entries


def test_the_project_has_german_catalogs():
    """The apps and the project level each have a German catalog (so the scan below is not empty)."""
    names = {str(p.relative_to(ROOT)) for p in _po_files()}
    for app in ("lti", "courses", "tutor"):
        assert f"{app}/locale/de/LC_MESSAGES/django.po" in names
    assert "locale/de/LC_MESSAGES/django.po" in names


@pytest.mark.parametrize("po", _po_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_catalog_is_complete_and_compiled(po):
    """No empty or fuzzy entries, same placeholders in German, and the .mo says what the .po says."""
    entries = [e for e in parse_po(po) if not e["obsolete"]]
    header, messages = entries[0], entries[1:]
    assert header["msgid"] == "" and "fuzzy" not in header["flags"], "header must not be fuzzy"
    assert "Language: de" in header["msgstr"][0]
    assert messages
    for e in messages:
        assert "fuzzy" not in e["flags"], f"fuzzy: {e['msgid']!r}"
        forms = [e["msgstr"][i] for i in sorted(e["msgstr"])]
        assert forms and all(forms), f"untranslated: {e['msgid']!r}"
        originals = [e["msgid"]] if e["msgid_plural"] is None else [e["msgid_plural"]]
        for form in forms:
            assert sorted(PLACEHOLDER.findall(form)) == sorted(PLACEHOLDER.findall(originals[0])), (
                f"placeholders differ: {e['msgid']!r} -> {form!r}")

    mo = po.with_suffix(".mo")
    assert mo.exists(), f"{mo} is missing: compile with msgfmt"
    with mo.open("rb") as f:
        compiled = gettext.GNUTranslations(f)
    for e in messages:
        key = e["msgid"] if e["msgctxt"] is None else f"{e['msgctxt']}\x04{e['msgid']}"
        if e["msgid_plural"] is None:
            assert compiled.gettext(key) == e["msgstr"][0], f"{mo} is stale for {e['msgid']!r}: recompile"
        else:
            assert compiled.ngettext(key, e["msgid_plural"], 1) == e["msgstr"][0], f"{mo} is stale"
            assert compiled.ngettext(key, e["msgid_plural"], 5) == e["msgstr"][1], f"{mo} is stale"
    if shutil.which("msgfmt"):
        check = subprocess.run(["msgfmt", "--check", "-o", "/dev/null", str(po)], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr


def test_no_catalog_is_shadowed_by_another(db):
    """What our catalogs say is what the user sees: no app (e.g. Django's admin) overrides a German string."""
    catalogs = [p.with_suffix(".mo") for p in _po_files()]
    with translation.override("de"):
        for mo in catalogs:
            with mo.open("rb") as f:
                compiled = gettext.GNUTranslations(f)
            for msgid, msgstr in compiled._catalog.items():
                if isinstance(msgid, str) and msgid and "\x04" not in msgid:
                    assert translation.gettext(msgid) == msgstr, f"{mo}: {msgid!r} is shown differently"


@pytest.mark.parametrize("app", ["lti", "courses", "tutor", "project"])
def test_every_string_in_the_app_is_in_its_catalog(app, tmp_path):
    """Re-extracting the strings (makemessages on a copy) finds nothing untranslated.

    "project" is config/ and templates/ with the project-level catalog in locale/.
    """
    if not shutil.which("xgettext"):
        pytest.fail("gettext (xgettext) is needed to extract strings: apt-get install gettext")
    copy = tmp_path / app
    parts = ["config", "templates", "locale"] if app == "project" else [app]
    for part in parts:
        shutil.copytree(ROOT / part, (copy / part) if app == "project" else copy,
                        ignore=shutil.ignore_patterns("__pycache__", "*.mo"))
    run = subprocess.run([sys.executable, str(ROOT / "manage.py"), "makemessages", "-l", "de", "--no-obsolete"],
                         cwd=copy, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    fresh = parse_po(copy / "locale/de/LC_MESSAGES/django.po")[1:]
    missing = [e["msgid"] for e in fresh if "fuzzy" in e["flags"] or not all(e["msgstr"].values())]
    assert not missing, f"strings of {app} not translated into German: {missing}"
