"""The session engine of the tool (SESSION_ENGINE = "courses.sessions"): Django's database sessions in
courses.models.PersonSession, which records whose session it is, so one person's sessions can be revoked.

A session has a fixed lifetime (SESSION_HOURS from sign-in, see start_session); requests do not extend it, only an
explicit renewal does (renew_session, the pages call it while the person works).
"""

from datetime import timedelta

from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore as DBStore
from django.utils import timezone


class SessionStore(DBStore):
    """Database sessions that keep the signed-in person's id beside the data."""

    @classmethod
    def get_model_class(cls):
        """courses.models.PersonSession."""
        from courses.models import PersonSession

        return PersonSession

    def create_model_instance(self, data):
        """The row to save, with the person it belongs to."""
        row = super().create_model_instance(data)
        try:
            row.user_id = int(data.get("_auth_user_id"))
        except (TypeError, ValueError):
            row.user_id = None
        return row


def start_session(session):
    """Give a freshly signed-in session its fixed end: SESSION_HOURS from now, not moved by later requests."""
    session.set_expiry(timezone.now() + timedelta(seconds=settings.SESSION_COOKIE_AGE))


def renew_session(session):
    """The explicit renewal: the session ends SESSION_HOURS from now (returns that end)."""
    start_session(session)
    return session.get_expiry_date()


def revoke_sessions(user):
    """End every session of this person at once (all browsers); returns how many there were."""
    from courses.models import PersonSession

    return PersonSession.objects.filter(user=user).delete()[0]
