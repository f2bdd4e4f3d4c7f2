"""The person's session and the tickets that name it (courses/sessions.py, courses/access.py), over real HTTP against
the uvicorn server: a ticket opens one page once, from any browser, and only within SESSION_TICKET_SECONDS (Redis
lets it expire); a session past its fixed lifetime and one the admin revoked (``manage.py revoke_sessions``) are
refused, whether carried in the header, by a ticket or in the cookie."""

from datetime import timedelta
from io import StringIO

import httpx
import pytest
from django.conf import settings
from django.core.cache import cache
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from courses.access import _ticket_key, issue_ticket
from courses.models import PersonSession
from tests.support import make_member, session_for, session_headers, wait_for

pytestmark = pytest.mark.django_db(transaction=True)  # the server process reads what the test wrote


def status(url, **request):
    """The status of a GET from a fresh client (another browser: no cookie, nothing of the last request)."""
    return httpx.get(url, timeout=30, follow_redirects=False, **request).status_code


def test_a_ticket_opens_one_page_once_and_only_within_its_time(web_server, course, settings):
    _student, key = make_member(course)
    home = f"{web_server}/c/{course.pk}/"
    ticket = issue_ticket(key)
    assert status(home, params={"ticket": ticket}) == 200
    assert status(home, params={"ticket": ticket}) == 403  # spent: a second use, here from another browser
    assert status(home, params={"ticket": "x" * 32}) == 403  # never issued

    settings.SESSION_TICKET_SECONDS = 1
    late = issue_ticket(key)
    assert cache.get(_ticket_key(late)) == key
    wait_for(lambda: cache.get(_ticket_key(late)) is None, timeout=10, what="the ticket's expiry in Redis")
    assert status(home, params={"ticket": late}) == 403  # expired, never used
    assert status(home, headers=session_headers(key)) == 200  # the session itself still works


def test_an_expired_or_revoked_session_is_refused_however_it_is_carried(web_server, course):
    student, key = make_member(course)
    home = f"{web_server}/c/{course.pk}/"
    assert status(home, headers=session_headers(key)) == 200
    assert status(home, cookies={settings.SESSION_COOKIE_NAME: key}) == 200
    ends = PersonSession.objects.get(pk=key).expire_date
    assert ends <= timezone.now() + timedelta(seconds=settings.SESSION_COOKIE_AGE)  # a fixed lifetime
    assert PersonSession.objects.get(pk=key).expire_date == ends  # the requests did not extend it

    ticket = issue_ticket(key)
    PersonSession.objects.filter(pk=key).update(expire_date=timezone.now() - timedelta(seconds=1))  # its time is up
    assert status(home, headers=session_headers(key)) == 403
    assert status(home, cookies={settings.SESSION_COOKIE_NAME: key}) == 403
    assert status(home, params={"ticket": ticket}) == 403  # a ticket of it is worthless too
    renewed = httpx.post(web_server + reverse("courses:session-renew"), headers=session_headers(key), timeout=30)
    assert renewed.status_code in (401, 403)  # an expired session cannot be renewed

    fresh = session_for(student)  # a new launch: a new session; then the admin revokes the person's sessions
    _other, other_key = make_member(course)
    ticket = issue_ticket(fresh)
    assert status(home, headers=session_headers(fresh)) == 200
    out = StringIO()
    call_command("revoke_sessions", student.username, stdout=out)
    assert "session(s) revoked" in out.getvalue()
    assert status(home, headers=session_headers(fresh)) == 403
    assert status(home, params={"ticket": ticket}) == 403
    assert status(home, headers=session_headers(other_key)) == 200  # another person's session is untouched
    assert not PersonSession.objects.filter(user=student).exists()
