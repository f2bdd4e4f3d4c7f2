"""What every API endpoint shares (config/api.py, config/api_urls.py): the OpenAPI schema (built without warnings and
equal to the committed docs/openapi.yaml, so a change of the API is a visible diff), its docs page under the tool's
Content-Security-Policy, problem details, the per-token rate limit and pages of lists."""

from pathlib import Path

import pytest
import yaml
from django.core.management import call_command

from courses.models import ApiToken, Membership
from tests.support import ROOT, chromium, make_member

COMMITTED = ROOT / "docs" / "openapi.yaml"


def test_the_schema_builds_without_warnings_and_equals_the_committed_copy(tmp_path):
    """If this fails after a change of the API: python manage.py spectacular --validate --fail-on-warn --lang en
    --file docs/openapi.yaml, and commit the diff."""
    built = tmp_path / "openapi.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--lang", "en", "--file", str(built))
    assert built.read_text() == COMMITTED.read_text(), "the API changed: regenerate docs/openapi.yaml (see docstring)"


def test_the_schema_describes_every_endpoint_with_its_errors_and_authentication():
    schema = yaml.safe_load(COMMITTED.read_text())
    operations = [(path, method, op) for path, item in schema["paths"].items() for method, op in item.items()]
    assert len(operations) >= 30
    for path, method, operation in operations:
        assert operation.get("description"), f"{method} {path} has no description"
        for code in ("401", "403", "404", "429"):
            assert operation["responses"][code]["content"] == {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}, (path, method, code)
        assert {next(iter(s)) for s in operation["security"]} == {"apiToken", "cookieAuth"}
    assert schema["components"]["securitySchemes"]["apiToken"] == {
        "type": "http", "scheme": "bearer", "description": schema["components"]["securitySchemes"]["apiToken"][
            "description"]}
    ask = schema["paths"]["/api/v1/courses/{course_id}/ask/"]["post"]["responses"]
    assert set(ask["200"]["content"]) == {"text/event-stream"} and set(ask["202"]["content"]) == {"application/json"}


@pytest.mark.django_db
def test_the_schema_and_its_docs_page_are_served_by_the_tool_itself(client):
    schema = client.get("/api/v1/schema/")
    assert schema.status_code == 200 and yaml.safe_load(schema.content)["info"]["title"] == "Course tutor API"
    docs = client.get("/api/v1/docs/")
    html = docs.content.decode()
    assert docs.status_code == 200 and "<style" not in html and "<script>" not in html
    assert "script-src 'self'" in docs["Content-Security-Policy"]
    for asset in ("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js", "/static/base/api_docs.css"):
        assert asset in html and client.get(asset).status_code == 200
    script = client.get("/api/v1/docs/?script=")
    assert script["Content-Type"].startswith("application/javascript") and "/api/v1/schema/" in script.content.decode()


@pytest.mark.django_db
def test_the_root_names_the_schema_the_docs_and_the_courses(client):
    root = client.get("/api/v1/").json()
    assert root == {"schema": "http://testserver/api/v1/schema/", "docs": "http://testserver/api/v1/docs/",
                    "course-list": "http://testserver/api/v1/courses/"}


@pytest.mark.django_db
def test_errors_are_problem_details_in_the_reader_s_language(client, course):
    missing = client.get("/api/v1/no/such/thing/", HTTP_ACCEPT_LANGUAGE="de")
    assert missing.status_code == 404 and missing["Content-Type"] == "application/problem+json"
    assert missing.json() == {"type": "about:blank", "title": "Not Found", "status": 404, "code": "not_found",
                              "detail": "Diesen Endpunkt gibt es in dieser API nicht.",
                              "instance": "/api/v1/no/such/thing/"}
    anonymous = client.get(f"/api/v1/courses/{course.pk}/")
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "not_authenticated"
    assert anonymous["WWW-Authenticate"] == 'Bearer realm="api"'
    _, token = make_member(course)
    refused = client.get(f"/api/v1/courses/{course.pk}/usage/", HTTP_X_TUTOR_SESSION=token, HTTP_ACCEPT_LANGUAGE="de")
    assert refused.status_code == 403 and refused.json()["detail"] == \
        "Nur die Lehrenden des Kurses dürfen diese Seite öffnen."
    other = client.get("/api/v1/courses/999999/", HTTP_X_TUTOR_SESSION=token)
    assert other.status_code == 404 and other.json()["detail"] == \
        "This course does not exist, or you are not a member of it."


@pytest.mark.django_db
def test_each_token_has_its_own_rate_limit_with_retry_after(client, course, settings):
    settings.API_RATE_LIMIT = "3/minute"
    lecturer, _ = make_member(course, Membership.INSTRUCTOR)
    first = ApiToken.issue(lecturer, name="a", course=course)[1]
    second = ApiToken.issue(lecturer, name="b", course=course)[1]
    url = f"/api/v1/courses/{course.pk}/"
    statuses = [client.get(url, HTTP_AUTHORIZATION=f"Bearer {first}").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = client.get(url, HTTP_AUTHORIZATION=f"Bearer {first}")
    assert limited["Content-Type"] == "application/problem+json" and 0 < int(limited["Retry-After"]) <= 60
    assert limited.json()["code"] == "throttled"
    assert client.get(url, HTTP_AUTHORIZATION=f"Bearer {second}").status_code == 200  # another token: its own count


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_docs_page_works_in_a_browser_under_the_content_security_policy(web_server):
    """Swagger UI renders every operation from the tool's own files: no console error (a blocked script or style
    would be one), no failed response. (Its accessibility is Swagger UI's, not audited here.)"""
    with chromium() as (browser, watch):
        page = browser.new_page()
        page.goto(f"{web_server}/api/v1/docs/")
        page.locator(".opblock").first.wait_for(timeout=60000)
        assert page.locator(".opblock").count() >= 30
        assert page.locator(".information-container .title").inner_text().startswith("Course tutor API")
        page.wait_for_load_state("networkidle")
        watch.assert_clean()
        Path(ROOT / "test-artifacts").mkdir(exist_ok=True)
        page.screenshot(path=str(ROOT / "test-artifacts" / "api_docs.png"))


def test_the_pages_poll_the_api_and_their_former_json_views_are_gone():
    from django.urls import NoReverseMatch, reverse

    for name in ("courses:documents_status", "tutor:question-set-status", "tutor:generation-run-status"):
        with pytest.raises(NoReverseMatch):
            reverse(name, args=[1] if name.startswith("courses") else [1, 1])
    for script in ("courses/static/courses/documents.js", "tutor/static/tutor/question_set.js",
                   "tutor/static/tutor/generation_run.js"):
        assert "/api/v1/courses/" in (ROOT / script).read_text()


def test_errors_of_lists_and_nested_objects_are_named_by_their_path():
    """A list's item ({"chapters": {"5": [...]}}) or a nested object's field keeps the problem's errors one level
    deep ({field: [messages]}), as the schema describes them."""
    from config.api import _detail_and_errors

    detail, errors = _detail_and_errors({"chapters": {5: ["Null characters are not allowed."]},
                                         "options": [{}, {"text": ["This field may not be blank."]}],
                                         "title": ["This field is required."]})
    assert errors == {"chapters.5": ["Null characters are not allowed."],
                      "options.1.text": ["This field may not be blank."], "title": ["This field is required."]}
    assert detail == "Null characters are not allowed."


@pytest.mark.django_db
def test_a_token_s_count_is_sent_to_redis_before_its_token_is_read_and_still_limits(client, course, settings,
                                                                                   monkeypatch):
    """ApiTokenAuthentication sends the rate limit's check (config.ratelimit.begin) before the token's query and
    reads Redis's answer after it, so the two round trips overlap; the throttle uses that answer and asks Redis
    nothing more. An unknown token's requests count under a key of their own (a real token's share stays whole),
    the Redis connection goes back to the pool each time, and a Redis that lost the script (a restart) still
    answers."""
    from config import ratelimit
    from courses import access

    settings.API_RATE_LIMIT = "3/minute"
    lecturer, _ = make_member(course, Membership.INSTRUCTOR)
    secret = ApiToken.issue(lecturer, name="a", course=course)[1]
    url = f"/api/v1/courses/{course.pk}/"
    order, hits = [], []
    begin, token_row, hit = ratelimit.begin, access.token_row, ratelimit.hit
    monkeypatch.setattr(ratelimit, "begin", lambda *a, **k: order.append("count sent") or begin(*a, **k))
    monkeypatch.setattr(access, "token_row", lambda digest: order.append("token read") or token_row(digest))
    monkeypatch.setattr(ratelimit, "hit", lambda *a, **k: hits.append(a) or hit(*a, **k))
    assert [client.get(url, HTTP_AUTHORIZATION="Bearer nope").status_code for _ in range(4)] == [401] * 4
    clients_before = _limiter_connections()
    assert client.get(url, HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200
    assert order[-2:] == ["count sent", "token read"] and hits == []
    ratelimit._client.script_flush()  # as after a restart of Redis: the next count loads the script again
    statuses = [client.get(url, HTTP_AUTHORIZATION=f"Bearer {secret}").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert len(hits) == 1  # only the answer to the flushed script came from hit()
    assert _limiter_connections() == clients_before >= 1  # one connection, reused: none left behind


def _limiter_connections():
    """How many connections the rate limiter (config.ratelimit) has open to Redis."""
    from config import ratelimit

    return sum(1 for entry in ratelimit._client.client_list() if entry["name"] == ratelimit.CLIENT_NAME)
