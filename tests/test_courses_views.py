"""The lecturer's documents page (upload, progress, replace, re-index, delete) and the passage reader."""

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from courses.access import tool_url
from courses.documents import add_document
from courses.ingest import ingest_document
from courses.models import Chunk, Course, Document, Membership
from tests.support import page_data, page_forms, session_for, session_headers

CORPUS = Path(__file__).resolve().parent.parent / "deploy" / "demo_corpus" / "debian-reference-de"


def member(course, role):
    user = get_user_model().objects.create(username=f"{role}-{course.pk}")
    Membership.objects.create(course=course, user=user, role=role)
    return session_for(user)


def test_a_lecturer_uploads_a_text_and_sees_its_progress(client, course, django_capture_on_commit_callbacks,
                                                         monkeypatch):
    queued = []
    monkeypatch.setattr("courses.tasks.ingest_document.apply_async", lambda args, **options: queued.append(args[0]))
    token = member(course, Membership.INSTRUCTOR)
    url = reverse("courses:documents", args=[course.pk])
    upload = SimpleUploadedFile("kapitel3.html", (CORPUS / "ch03.de.html").read_bytes(), content_type="text/html")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"file": upload, "title": "Kapitel 3"}, headers=session_headers(token))
    assert response.status_code == 302
    document = Document.objects.get(course=course)
    assert document.title == "Kapitel 3" and queued == [document.pk]
    page = client.get(response.url)
    assert page.status_code == 200 and "Kapitel 3" in page.content.decode() and "<progress" in page.content.decode()
    status_url = page_data(page.content.decode(), "documents", "status-url")  # what the page polls: the API
    assert status_url == tool_url("api:course-documents-list", course.pk)
    status = client.get(status_url).json()
    assert status["results"][0]["status"] == "queued"
    ingest_document(document.pk)
    status = client.get(status_url).json()
    assert status["results"][0]["status"] == "ready" and status["results"][0]["percent"] == 100


def test_upload_errors_are_shown_clearly(client, course, settings):
    settings.MAX_UPLOAD_MB = 1
    token = member(course, Membership.INSTRUCTOR)
    url = reverse("courses:documents", args=[course.pk])
    big = SimpleUploadedFile("riesig.txt", b"x" * (1024 * 1024 + 10))
    page = client.post(url, {"file": big}, follow=True, HTTP_ACCEPT_LANGUAGE="de", headers=session_headers(token))
    assert "ist größer als 1 MB" in page.content.decode()
    wrong = SimpleUploadedFile("bild.png", b"\x89PNG....")
    page = client.post(url, {"file": wrong}, follow=True, headers=session_headers(token))
    assert "are not supported" in page.content.decode()
    assert not Document.objects.exists()


def test_learners_may_not_manage_texts(client, course):
    token = member(course, Membership.LEARNER)
    assert client.get(reverse("courses:documents", args=[course.pk]), headers=session_headers(token)).status_code == 403
    upload = SimpleUploadedFile("x.txt", b"Text")
    assert client.post(reverse("courses:documents", args=[course.pk]), {"file": upload}, headers=session_headers(token)).status_code == 403
    assert client.get(reverse("courses:documents", args=[course.pk])).status_code == 403  # no launch at all
    assert not Document.objects.exists()


def test_reindex_and_delete(client, course, monkeypatch):
    monkeypatch.setattr("courses.tasks.ingest_document.apply_async", lambda args, **options: None)
    token = member(course, Membership.TEACHING_ASSISTANT)
    document = add_document(course, "notes.md", b"# Titel\n\nEin Absatz.", enqueue=False)
    ingest_document(document.pk)
    client.post(reverse("courses:reindex", args=[course.pk, document.pk]), headers=session_headers(token))
    document.refresh_from_db()
    assert document.status == Document.QUEUED
    client.post(reverse("courses:delete", args=[course.pk, document.pk]), headers=session_headers(token))
    assert not Document.objects.exists() and not Chunk.objects.exists()


def test_any_member_reads_a_cited_passage_but_only_in_its_own_course(client, course):
    document = add_document(course, "ch03.de.html", (CORPUS / "ch03.de.html").read_bytes(), enqueue=False)
    ingest_document(document.pk)
    chunk = Chunk.objects.filter(document=document, text__contains="UEFI").first()
    token = member(course, Membership.LEARNER)
    page = client.get(reverse("courses:passage", args=[course.pk, chunk.pk]), headers=session_headers(token))
    assert page.status_code == 200
    assert "3.1 Ein Überblick über den Bootstrap-Prozess" in page.content.decode()
    other = Course.objects.create(title="Anderer Kurs")
    other_token = member(other, Membership.INSTRUCTOR)
    assert client.get(reverse("courses:passage", args=[other.pk, chunk.pk]), {}, headers=session_headers(other_token)).status_code == 404
    assert client.get(reverse("courses:passage", args=[course.pk, chunk.pk]), {}, headers=session_headers(other_token)).status_code == 403


def test_a_markdown_text_reads_as_formatted_text_with_its_passage_highlighted(client, course):
    """The reader view renders a Markdown document (sanitized) instead of showing its syntax, and a document
    without headings is not named twice."""
    text = ("# Scheduling\n\n- **Prioritäten-Scheduling**: der Prozess mit der höchsten Priorität läuft.\n"
            "- Starvation <niedrig>: niedrige Prioritäten kommen nie dran.\n\n<script>alert(1)</script>\n")
    document = add_document(course, "scheduling.md", text.encode(), enqueue=False)
    ingest_document(document.pk)
    chunk = Chunk.objects.filter(document=document).first()
    token = member(course, Membership.LEARNER)
    body = client.get(reverse("courses:passage", args=[course.pk, chunk.pk]), headers=session_headers(token)).content.decode()
    passage = body.split('id="passage">')[1].split("</blockquote>")[0]
    assert "<strong>Prioritäten-Scheduling</strong>" in passage and "**" not in passage
    assert "&lt;niedrig&gt;" in passage and "<script>" not in body.split("</header>")[1].split("<script type")[0]
    plain = add_document(course, "notizen.txt", b"Nur ein Absatz ohne Ueberschrift ueber init.", enqueue=False)
    ingest_document(plain.pk)
    chunk = Chunk.objects.filter(document=plain).first()
    body = client.get(reverse("courses:passage", args=[course.pk, chunk.pk]), headers=session_headers(token)).content.decode()
    assert "notizen ›" not in body


def test_the_reader_keeps_the_paragraphs_of_a_markdown_section(client, course):
    """Two paragraphs of one Markdown section stay two blocks in the reader (issue 24 §4: they were merged)."""
    text = ("# Prozesse\n\nEin Prozess ist ein laufendes Programm mit eigenem Speicher.\n\n"
            "Jeder Prozess hat eine Nummer, die PID.\n")
    document = add_document(course, "prozesse.md", text.encode(), enqueue=False)
    ingest_document(document.pk)
    chunk = Chunk.objects.get(document=document)
    token = member(course, Membership.LEARNER)
    body = client.get(reverse("courses:passage", args=[course.pk, chunk.pk]), headers=session_headers(token)).content.decode()
    passage = body.split('id="passage">')[1].split("</blockquote>")[0]
    assert passage.count("<p>") == 2, passage
    assert "<p>Ein Prozess ist ein laufendes Programm mit eigenem Speicher.</p>" in passage
    assert "<p>Jeder Prozess hat eine Nummer, die PID.</p>" in passage


def test_the_documents_page_forms_work_as_the_browser_submits_them(course, monkeypatch):
    """Replace, re-index and delete post exactly what their forms hold, plus the session field the page's script
    (static/base/base.js) adds in a frame without cookies: each form must carry its CSRF token itself (issue 11: all
    three answered 403), which Django's CSRF check (enforced here) requires."""
    from django.test import Client

    from courses.access import SESSION_FIELD

    monkeypatch.setattr("courses.tasks.ingest_document.apply_async", lambda args, **options: None)
    token = member(course, Membership.INSTRUCTOR)
    document = add_document(course, "notes.md", b"# Titel\n\nEin Absatz.", enqueue=False)
    ingest_document(document.pk)
    browser = Client(enforce_csrf_checks=True)  # no cookie: the session comes as from the page in a bare frame

    def form(suffix):
        page = browser.get(reverse("courses:documents", args=[course.pk]), headers=session_headers(token))
        assert page.status_code == 200
        found = [f for f in page_forms(page.content.decode()) if f["action"].split("?")[0].endswith(suffix)]
        assert len(found) == 1, suffix
        return dict(found[0], fields={**found[0]["fields"], SESSION_FIELD: token})

    replace = form(f"/documents/{document.pk}/replace/")
    upload = SimpleUploadedFile("notes.md", b"# Neu\n\nEin neuer Absatz.")
    assert browser.post(replace["action"], {**replace["fields"], "file": upload}).status_code == 302
    document.refresh_from_db()
    assert document.status == Document.QUEUED and document.filename == "notes.md"

    reindex = form(f"/documents/{document.pk}/reindex/")
    assert browser.post(reindex["action"], reindex["fields"]).status_code == 302

    delete = form(f"/documents/{document.pk}/delete/")
    assert browser.post(delete["action"], delete["fields"]).status_code == 302
    assert not Document.objects.filter(pk=document.pk).exists()


def test_a_ticket_opens_one_page_once_and_the_session_is_renewed_only_when_asked(course):
    from django.test import Client

    from courses.access import issue_ticket
    from courses.models import PersonSession

    key = member(course, Membership.LEARNER)
    url = reverse("tutor:home", args=[course.pk])
    ticket = issue_ticket(key)
    assert Client().get(url, {"ticket": ticket}).status_code == 200
    assert Client().get(url, {"ticket": ticket}).status_code == 403  # spent: worthless in another browser
    ends = PersonSession.objects.get(pk=key).expire_date
    Client().get(url, headers=session_headers(key))
    assert PersonSession.objects.get(pk=key).expire_date == ends  # a request does not extend it
    assert Client().post(reverse("courses:session-renew")).status_code == 401
    assert Client().post(reverse("courses:session-renew"), headers=session_headers(key)).status_code == 200
    assert PersonSession.objects.get(pk=key).expire_date >= ends
