"""The registries config/ offers the apps (config/framing.py, config/privacy.py, config/middleware.py,
config/health.py): what a provider registers is what the project uses, and without one nothing breaks."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from config import framing, health, middleware, privacy
from courses.access import issue_ticket
from courses.models import Course
from tests.support import make_member

pytestmark = pytest.mark.django_db


def test_frame_ancestors_come_from_every_provider_and_the_cache_only_when_each_has_one(monkeypatch):
    kept = {"a": ["https://a.example"], "b": None}
    monkeypatch.setattr(framing, "PROVIDERS", [])
    framing.register_frame_ancestors(lambda: ["https://a.example"], lambda: kept["a"])
    framing.register_frame_ancestors(lambda: ["https://b.example", "https://a.example"], lambda: kept["b"])
    assert framing.platform_origins() == ["https://a.example", "https://b.example"]
    assert framing.cached_platform_origins() is None  # b must read first
    kept["b"] = ["https://b.example"]
    assert framing.cached_platform_origins() == ["https://a.example", "https://b.example"]
    monkeypatch.setattr(framing, "PROVIDERS", [])
    assert framing.platform_origins() == [] and framing.cached_platform_origins() == []


def test_an_apps_erasure_counts_and_its_cleanup_runs_after_the_account_is_gone(monkeypatch):
    course = Course.objects.create(title="Register")
    person, _session = make_member(course)
    seen = []

    def erase(user):
        seen.append(("erase", get_user_model().objects.filter(pk=user.pk).exists()))
        return privacy.Erased({"example.row": 3}, after=lambda: seen.append(
            ("after", get_user_model().objects.filter(pk=user.pk).exists())))

    monkeypatch.setattr(privacy, "PARTS", [*privacy.PARTS, privacy.PersonData(lambda user: {"example": 1}, erase)])
    assert privacy.export_user_data(person.pk)["example"] == 1
    counts = privacy.delete_user_data(person.pk)
    assert seen == [("erase", True), ("after", False)]
    assert counts["example.row"] == 3 and counts["courses.membership"] == 1 and counts["sessions.session"] == 1


def test_without_a_finder_an_lms_identity_names_nobody(monkeypatch):
    monkeypatch.setattr(privacy, "FINDERS", [])
    with pytest.raises(privacy.UnknownPerson, match="no account for issuer 'https://lms.example' and subject '7'"):
        privacy.find_user(issuer="https://lms.example", sub="7")


def test_a_ticket_opens_a_session_only_through_the_registered_rule(monkeypatch):
    course = Course.objects.create(title="Tickets")
    _person, session_key = make_member(course)
    page = f"/c/{course.pk}/"  # the course page (tutor.chat)
    opened = Client().get(page, {"ticket": issue_ticket(session_key)})
    assert opened.wsgi_request.session_via == "ticket" and opened.wsgi_request.session.session_key == session_key
    monkeypatch.setattr(middleware, "TICKETS", {})
    refused = Client().get(page, {"ticket": issue_ticket(session_key)})
    assert refused.wsgi_request.session_via == "" and refused.status_code == 403


def test_an_apps_readiness_check_comes_before_the_daily_jobs_summary(monkeypatch):
    monkeypatch.setattr(health, "CHECKS", dict(health.CHECKS))
    health.register_check("example", lambda: "fine")
    assert list(health.CHECKS)[-2:] == ["example", "periodic"]
    assert health.run_checks(["example"])["example"]["detail"] == "fine"
