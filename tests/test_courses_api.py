"""The courses app's API: course texts (upload, progress, replace with If-Match, re-index, delete), search with
scores and citations, passages; and the API tokens (the lecturer's page, the admin's command) and the ways a request
authenticates (courses.access)."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from django.test.client import BOUNDARY, encode_multipart
from django.urls import reverse
from django.utils import timezone

from courses.ingest import ingest_document
from courses.models import ApiToken, Course, Document, Membership
from tests.support import INIT_TEXT, make_course, make_member, page_forms, session_headers

pytestmark = pytest.mark.django_db
COURSE_TEXTS = [("systemstart.md", INIT_TEXT)]  # for the course fixture (tests/support.py)


@pytest.fixture
def queued(monkeypatch):
    """Ingestions queued by the requests (run by the test itself)."""
    found = []
    monkeypatch.setattr("courses.tasks.ingest_document.apply_async", lambda args, **options: found.append(args[0]))
    return found


def bearer(course, scope=ApiToken.WRITE, user=None):
    """The header of a new course token of a lecturer of the course."""
    user = user or make_member(course, Membership.INSTRUCTOR)[0]
    return {"HTTP_AUTHORIZATION": "Bearer " + ApiToken.issue(user, name="t", scope=scope, course=course)[1]}


def upload(name, data):
    return SimpleUploadedFile(name, data.encode() if isinstance(data, str) else data)


# --- Course texts ------------------------------------------------------------------------------------------

def test_a_script_uploads_a_text_and_follows_its_indexing(client, course, queued, django_capture_on_commit_callbacks):
    auth = bearer(course)
    url = f"/api/v1/courses/{course.pk}/documents/"
    with django_capture_on_commit_callbacks(execute=True):
        created = client.post(url, {"file": upload("notizen.md", "# Notizen\n\nDienste startet systemd.\n"),
                                    "title": "Notizen"}, **auth)
    assert created.status_code == 201 and created.json()["status"] == "queued" and created.json()["percent"] == 0
    document = Document.objects.get(pk=created.json()["id"])
    assert created["Location"] == f"{url}{document.pk}/" and queued == [document.pk]
    assert created.json()["status_label"] == "Waiting: 1 document is indexed before this one" or \
        created.json()["status_label"] == "Queued"
    ingest_document(document.pk)
    ready = client.get(created["Location"], **auth).json()
    assert ready["status"] == "ready" and ready["percent"] == 100 and ready["chunks_total"] == 1
    listed = client.get(url, {"page_size": 1}, **auth).json()
    assert listed["count"] == 2 and len(listed["results"]) == 1 and listed["next"].endswith("page=2&page_size=1")
    again = client.post(url, {"file": upload("kopie.md", "# Notizen\n\nDienste startet systemd.\n")}, **auth)
    assert again.json()["id"] == document.pk  # the same content twice is one document


def test_upload_refusals_are_the_page_s_messages(client, course, settings):
    settings.MAX_UPLOAD_MB = 1
    auth = bearer(course)
    url = f"/api/v1/courses/{course.pk}/documents/"
    big = client.post(url, {"file": upload("riesig.txt", b"x" * (1024 * 1024 + 10))}, HTTP_ACCEPT_LANGUAGE="de", **auth)
    assert big.status_code == 400 and big["Content-Type"] == "application/problem+json"
    assert big.json() == {"type": "about:blank", "title": "Bad Request", "status": 400, "code": "invalid",
                          "detail": "Die Datei „riesig.txt“ ist größer als 1 MB.", "instance": url}
    wrong = client.post(url, {"file": upload("bild.png", b"\x89PNG....")}, **auth)
    assert wrong.json()["detail"].startswith("Files of type “.png” are not supported.")
    missing = client.post(url, {"title": "ohne Datei"}, **auth)
    assert missing.json()["detail"] == "Please choose a file to upload."
    as_json = client.post(url, {"title": "x"}, content_type="application/json", **auth)
    assert as_json.status_code == 415 and as_json["Content-Type"] == "application/problem+json"
    assert Document.objects.filter(course=course).count() == 1


def test_two_lecturers_replacing_a_text_do_not_overwrite_each_other(client, course, queued):
    auth = bearer(course)
    document = Document.objects.get(course=course)
    url = f"/api/v1/courses/{course.pk}/documents/{document.pk}/"
    etag = client.get(url, **auth)["ETag"]

    def replace(name, text, **headers):
        return client.put(url, encode_multipart(BOUNDARY, {"file": upload(name, text)}),
                          content_type=f"multipart/form-data; boundary={BOUNDARY}", **auth, **headers)

    first = replace("neu.md", "# Neu\n\nErste Fassung.\n", HTTP_IF_MATCH=etag)
    assert first.status_code == 200 and first.json()["status"] == "queued" and first["ETag"] != etag
    second = replace("anders.md", "# Anders\n\nZweite Fassung.\n", HTTP_IF_MATCH=etag)
    assert second.status_code == 412 and second.json()["code"] == "precondition_failed"
    assert Document.objects.get(pk=document.pk).filename == "neu.md"
    assert client.get(url, **auth)["ETag"] == first["ETag"]  # progress does not change the version
    assert client.post(url + "reindex/", **auth).status_code == 202
    assert client.delete(url, **auth).status_code == 204 and not Document.objects.filter(pk=document.pk).exists()
    assert client.get(url, **auth).json()["detail"] == "This document does not exist in this course."


# --- Search and passages -------------------------------------------------------------------------------------

def test_search_returns_the_course_s_passages_with_scores_and_citations(client, course):
    auth = bearer(course, ApiToken.READ)
    other = make_course(("anderes.md", INIT_TEXT.replace("Debian", "Fremdkurs")), title="Anderer Kurs")
    response = client.get(f"/api/v1/courses/{course.pk}/search/", {"q": "Welche Prozessnummer hat init?", "k": 2},
                          **auth).json()
    assert response["query"] == "Welche Prozessnummer hat init?" and len(response["results"]) == 2
    best = response["results"][0]
    assert "Prozessnummer 1" in best["text"] and best["score"] > response["results"][1]["score"]
    assert best["document_title"] == "systemstart" and best["section"].endswith("Der Init-Prozess")
    assert best["url"] == reverse("courses:passage", args=[course.pk, best["chunk_id"]])
    assert [r["api_url"] for r in response["results"]] == [  # each result's own links (courses.api.passage_links)
        reverse("api:course-passage", args=[course.pk, r["chunk_id"]]) for r in response["results"]]
    passage = client.get(best["api_url"], **auth).json()
    assert passage["text"] == best["text"] and best["text"] in passage["section_text"]
    assert all(hit["document_id"] in set(Document.objects.filter(course=course).values_list("pk", flat=True))
               for hit in response["results"])
    foreign_chunk = other.chunks.first().pk
    assert client.get(f"/api/v1/courses/{course.pk}/passages/{foreign_chunk}/", **auth).status_code == 404
    refused = client.get(f"/api/v1/courses/{course.pk}/search/", {"q": "init", "k": 99}, **auth)
    assert refused.status_code == 400 and set(refused.json()["errors"]) == {"k"}


def test_a_search_names_the_time_of_its_retrieval_and_of_the_whole_request(client, course):
    """Server-Timing: retrieve() and Django's whole part (app), so a client (and bench/bench_api.py) can tell the
    search's own time from the API's cost; other responses do not carry it."""
    auth = bearer(course, ApiToken.READ)
    response = client.get(f"/api/v1/courses/{course.pk}/search/", {"q": "Welche Prozessnummer hat init?"}, **auth)
    timings = dict(part.strip().split(";dur=") for part in response["Server-Timing"].split(","))
    assert set(timings) == {"retrieve", "app"} and 0 < float(timings["retrieve"]) <= float(timings["app"])
    assert "Server-Timing" not in client.get(f"/api/v1/courses/{course.pk}/", **auth)


def test_a_page_s_own_calls_send_the_session_in_a_header_and_changes_need_the_csrf_token(course, queued):
    """In a frame without cookies the page's script sends the session in X-Tutor-Session (never in the URL); a
    change also needs the session's CSRF token, which another site cannot know. Links in answers carry nothing."""
    _, key = make_member(course, Membership.INSTRUCTOR)
    browser = Client(enforce_csrf_checks=True)
    url = f"/api/v1/courses/{course.pk}/documents/"
    assert browser.get(url, headers=session_headers(key)).status_code == 200
    for carrier in ({"lt": key}, {"ticket": key}, {"sessionid": key}):  # a session key in a URL is worth nothing
        assert browser.get(url, carrier).status_code == 401
    forged = browser.post(url, {"file": upload("x.md", "# X\n")}, headers={"X-Tutor-Session": key})
    assert forged.status_code == 403 and forged.json()["detail"].startswith("CSRF Failed")
    assert browser.post(url, {"file": upload("x.md", "# X\n")}, headers=session_headers(key)).status_code == 201
    search = browser.get(f"/api/v1/courses/{course.pk}/search/", {"q": "init"}, headers=session_headers(key)).json()
    assert "?" not in search["results"][0]["url"]  # its links carry no credential
    assert browser.get(url, headers={"X-Tutor-Session": key + "x"}).status_code == 401


def test_a_session_must_pass_django_s_csrf_check_to_change_anything(course):
    lecturer, _ = make_member(course, Membership.INSTRUCTOR)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(lecturer)
    url = f"/api/v1/courses/{course.pk}/settings/"
    assert browser.get(url).status_code == 200
    refused = browser.patch(url, {"sources": 3}, content_type="application/json")
    assert refused.status_code == 403 and refused.json()["detail"].startswith("CSRF Failed")


def test_the_course_list_shows_only_what_the_caller_may_see(client, course):
    other = Course.objects.create(title="Anderer Kurs")
    student, student_token = make_member(course)
    Membership.objects.create(course=other, user=student)
    mine = client.get("/api/v1/courses/", HTTP_AUTHORIZATION=bearer(course)["HTTP_AUTHORIZATION"]).json()
    assert [(c["id"], c["access"]) for c in mine["results"]] == [(course.pk, "write")]
    read = client.get("/api/v1/courses/", **bearer(course, ApiToken.READ)).json()
    assert [c["access"] for c in read["results"]] == ["teach"]
    session = client.get("/api/v1/courses/", headers=session_headers(student_token)).json()["results"]
    assert {(c["id"], c["access"]) for c in session} == {(course.pk, "read"), (other.pk, "read")}


# --- API tokens ------------------------------------------------------------------------------------------------

def test_a_lecturer_makes_a_token_on_the_course_page_sees_it_once_and_revokes_it(client, course):
    lecturer, token = make_member(course, Membership.INSTRUCTOR)
    page_url = reverse("courses:api-tokens", args=[course.pk])
    client.cookies[settings.SESSION_COOKIE_NAME] = token  # the browser's cookie of the launch
    page = client.get(page_url)
    assert page.status_code == 200 and "no-store" in page["Cache-Control"]
    form = next(f for f in page_forms(page.content.decode()) if f["attrs"].get("id") == "new-api-token")
    made = client.post(form["action"], {**form["fields"], "name": "Portal-Chatbot", "scope": "read", "days": "30"})
    html = made.content.decode()
    secret = html.split('readonly value="')[1].split('"')[0]
    assert secret.startswith("ctk_") and len(secret) > 40
    stored = ApiToken.objects.get(course=course)
    assert stored.user == lecturer and stored.scope == "read" and secret not in str(stored.__dict__)
    assert stored.digest == ApiToken.digest_of(secret) and stored.hint == secret[:10]
    assert timedelta(days=29) < stored.expires_at - timezone.now() <= timedelta(days=30)
    assert secret not in client.get(page_url).content.decode()  # shown once

    assert client.get(f"/api/v1/courses/{course.pk}/", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200
    listed = client.get(page_url).content.decode()
    assert "Portal-Chatbot" in listed and stored.hint in listed and "never" not in listed  # its last use
    revoke = next(f for f in page_forms(listed) if "revoke" in f["attrs"].get("class", ""))
    assert client.post(revoke["action"], revoke["fields"]).status_code == 302
    refused = client.get(f"/api/v1/courses/{course.pk}/", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert refused.status_code == 401 and refused.json()["detail"] == "This API token was revoked."


def test_students_may_not_see_the_token_page(client, course):
    _, token = make_member(course)
    assert client.get(reverse("courses:api-tokens", args=[course.pk]), headers=session_headers(token)).status_code == 403


def test_a_token_stops_working_when_it_expires_or_its_lecturer_leaves(client, course):
    lecturer, _ = make_member(course, Membership.INSTRUCTOR)
    expiring, secret = ApiToken.issue(lecturer, name="t", course=course, days=1)
    url = f"/api/v1/courses/{course.pk}/"
    assert client.get(url, HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200
    Membership.objects.filter(user=lecturer).update(role=Membership.LEARNER)  # the LMS says: no longer teaching
    assert client.get(url, HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 404
    Membership.objects.filter(user=lecturer).update(role=Membership.INSTRUCTOR)
    ApiToken.objects.filter(pk=expiring.pk).update(expires_at=timezone.now())
    expired = client.get(url, HTTP_AUTHORIZATION=f"Bearer {secret}", HTTP_ACCEPT_LANGUAGE="de")
    assert expired.status_code == 401 and expired["WWW-Authenticate"] == 'Bearer realm="api"'
    assert expired.json()["detail"] == "Dieses API-Token ist abgelaufen."
    forged = client.get(url, HTTP_AUTHORIZATION="Bearer ctk_forged")
    assert forged.status_code == 401 and forged.json()["detail"] == "This API token is not valid."


def test_a_token_is_read_in_one_query_on_every_request(course):
    """The token, its person, its course and whether the person still teaches there: one query, made on every
    request (nothing cached), so a revoked token or a lecturer who left the course is refused on the next request."""
    from django.db import connection
    from django.test import RequestFactory
    from django.test.utils import CaptureQueriesContext
    from rest_framework.exceptions import AuthenticationFailed

    from courses.access import TEACH, ApiTokenAuthentication, course_grant

    lecturer, _ = make_member(course, Membership.INSTRUCTOR)
    token, secret = ApiToken.issue(lecturer, name="t", course=course, scope=ApiToken.READ)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())  # its last use needs no write now
    request = RequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {secret}")

    def authenticate():
        with CaptureQueriesContext(connection) as captured:
            found = ApiTokenAuthentication().authenticate(request)
            grant = course_grant(*found, course.pk)
        return len(captured), found, grant

    queries, (user, auth), grant = authenticate()
    assert queries == 1 and user == lecturer and auth == token and auth.user == lecturer and auth.course == course
    assert auth.teaches is True and grant.level == TEACH and grant.course == course and grant.user == lecturer
    Membership.objects.filter(user=lecturer).update(role=Membership.LEARNER)
    queries, (_user, auth), grant = authenticate()
    assert queries == 1 and auth.teaches is False and grant is None
    token.revoke()
    with pytest.raises(AuthenticationFailed, match="revoked"):
        ApiTokenAuthentication().authenticate(request)
    admin = get_user_model().objects.create(username="root", is_staff=True)
    _admin_token, admin_secret = ApiToken.issue(admin, name="a")
    user, auth = ApiTokenAuthentication().authenticate(
        RequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {admin_secret}"))
    assert user == admin and auth.course is None and auth.course_id is None and auth.last_used_at is None
    assert ApiToken.objects.get(pk=auth.pk).last_used_at is not None  # its first use is recorded


def test_an_admin_makes_a_token_for_every_course_with_the_command(client, course, capsys):
    admin = get_user_model().objects.create(username="root", is_staff=True)
    call_command("create_api_token", "--user", "root", "--name", "Auswertung", "--scope", "read")
    secret = capsys.readouterr().out.strip()
    token = ApiToken.objects.get(user=admin)
    assert token.course is None and token.digest == ApiToken.digest_of(secret)
    other = Course.objects.create(title="Anderer Kurs")
    listed = client.get("/api/v1/courses/", HTTP_AUTHORIZATION=f"Bearer {secret}").json()
    assert {c["id"] for c in listed["results"]} == {course.pk, other.pk}
    assert client.get(f"/api/v1/courses/{other.pk}/usage/", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200
    refused = client.patch(f"/api/v1/courses/{other.pk}/settings/", {"sources": 2}, content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert refused.status_code == 403 and refused.json()["detail"] == "This API token may only read."
    get_user_model().objects.filter(pk=admin.pk).update(is_staff=False)  # no longer an admin
    assert client.get("/api/v1/courses/", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 401
    with pytest.raises(Exception, match="not an active staff user"):
        call_command("create_api_token", "--user", "nobody", "--name", "x")
