"""An outside script with a course token, using only the documented API: the README's example client uploads a
folder of texts, waits for indexing, searches and asks with a streamed answer; then a question set is generated,
reviewed, released and exported, as the README's curl lines do. The real stack: uvicorn, the Celery worker, Redis,
PostgreSQL; the stub model answers."""

import json
import os
import re
import subprocess
import sys

import httpx
import pytest

from courses.models import ApiToken, Course, Document, Membership
from tests.support import CORPUS_DE, INIT_TEXT, ROOT, make_member, point_tutor_at, wait_for
from tutor.models import TutorConfig

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

QUESTIONS = [{"stem": "Welche Prozessnummer hat der Init-Prozess?", "options": ["0", "1", "42"], "answer": 1,
              "explanation": "Der Init-Prozess hat die PID 1.", "source": 1},
             {"stem": "Wo stehen die Paketquellen?", "options": ["/etc/apt/sources.list", "/etc/fstab"], "answer": 0,
              "explanation": "In /etc/apt/sources.list.", "source": 1}]


def readme_example():
    """The Python example client of README.md, as written there."""
    text = (ROOT / "README.md").read_text()
    return re.search(r"<!-- api-example[^>]*-->\n```python\n(.*?)```", text, re.S).group(1)


def test_an_outside_script_uploads_waits_searches_asks_and_exports(celery_worker, web_server, stub_llm, tmp_path,
                                                                   settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    course = Course.objects.create(title="Betriebssysteme", language="de")
    lecturer, _ = make_member(course, Membership.INSTRUCTOR)
    _token, secret = ApiToken.issue(lecturer, name="Semester-Skript", scope=ApiToken.WRITE, course=course)
    # the stub writes whole-passage questions (a set of them per request), the way the README's script expects
    point_tutor_at(course, stub_llm.url, question_method=TutorConfig.WHOLE_PASSAGE)
    stub_llm.reply = lambda body: (json.dumps({"questions": QUESTIONS}) if "response_format" in body
                                   else "Der Init-Prozess hat die **PID 1** [1].")
    folder = tmp_path / "texte"
    folder.mkdir()
    (folder / "systemstart.md").write_text(INIT_TEXT)
    (folder / "kapitel1.html").write_bytes((CORPUS_DE / "ch01.de.html").read_bytes())
    script = tmp_path / "client.py"
    script.write_text(readme_example())

    run = subprocess.run([sys.executable, str(script), str(folder), "Welche Prozessnummer hat der Init-Prozess?"],
                         env=dict(os.environ, TUTOR_URL=web_server, TUTOR_COURSE=str(course.pk), TUTOR_TOKEN=secret),
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert "'systemstart': 'Waiting" in out or "'systemstart': 'Queued'" in out  # it followed the indexing
    assert "{'kapitel1': 'Ready', 'systemstart': 'Ready'}" in out
    assert Document.objects.filter(course=course, status=Document.READY).count() == 2
    search = [line for line in out.splitlines() if "systemstart › " in line]
    assert search and re.match(r"\d\.\d{3}  systemstart › ", search[0])
    assert "Der Init-Prozess hat die **PID 1** [1]." in out and "Sources: ['systemstart'" in out

    # the question set, with the same token, as the README's curl lines do
    api = f"{web_server}/api/v1/courses/{course.pk}"
    auth = {"Authorization": f"Bearer {secret}"}
    sections = httpx.get(f"{api}/sections/", params={"page_size": 200}, headers=auth, timeout=10).json()["results"]
    init = next(s["id"] for s in sections if s["path"].endswith("Der Init-Prozess"))
    started = httpx.post(f"{api}/question-sets/", json={"sections": [init], "count": 2}, headers=auth, timeout=10)
    assert started.status_code == 202
    url = f"{api}/question-sets/{started.json()['id']}/"
    done = wait_for(lambda: (s := httpx.get(url, headers=auth, timeout=10).json())["generation"] == "done" and s,
                    timeout=120, what="the generation", every=0.5)  # as a script polls: within the API's rate
    assert done["questions"] == 2
    for question in httpx.get(url + "questions/", headers=auth, timeout=10).json()["results"]:
        approved = httpx.patch(f"{url}questions/{question['id']}/", json={"review": "approved"}, headers=auth,
                               timeout=10)
        assert approved.status_code == 200
    assert httpx.post(url + "release/", headers=auth, timeout=10).json()["status"] == "released"
    exported = httpx.get(url + "export/moodle-xml/", headers=auth, timeout=10)
    assert exported.status_code == 200 and b'<question type="multichoice">' in exported.content
    assert b"Wo stehen die Paketquellen?" in exported.content
