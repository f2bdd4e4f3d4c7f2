"""A person's data across every app (export, erasure) and the retention of what outlives its use.

config/ knows no app: each app registers its part in its AppConfig.ready() (``register_person_data``: the tables
it keeps about a person, their export and erasure; ``register_person_finder``: who an LMS identity is;
``register_retention``: what its daily retention run deletes). PERSONAL_TABLES names every table that refers to a
person, with what an export shows of it and what erasure does; tests/test_config_privacy.py walks the models and
fails on a table with a user reference that is not listed. ``purge_expired_data`` is the daily retention run:
expired sessions, and what the apps registered (used launch nonces, stored files no document refers to any more,
conversations past their course's retention). docs/processing-record.md (German and English) describes what is
stored, why, for how long and who sees it.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module

from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

log = logging.getLogger(__name__)

# table (app_label.model) -> what it holds of the person; erasure removes it, or (SET_NULL) removes the reference.
# The project's own tables here; each app adds its own (register_person_data).
PERSONAL_TABLES = {
    "auth.user": "the pseudonymous account (a hash of platform and LTI subject), last login, staff flags",
    "auth.user_groups": "the account's groups (admin site)",
    "auth.user_user_permissions": "the account's permissions (admin site)",
    "admin.logentry": "changes the person made in the admin site",
}


@dataclass(frozen=True)
class Erased:
    """What an app's erasure did: rows deleted per table ("app_label.model"), and a function to run once the
    erasure's transaction has committed, for copies outside the database (e.g. Redis), or None."""

    counts: dict
    after: Callable | None = None


@dataclass(frozen=True)
class PersonData:
    """One app's part of a person's data (see register_person_data)."""

    export: Callable | None
    erase: Callable | None


PARTS = []  # PersonData of each app, in the order of registration (INSTALLED_APPS: their ready() order)
FINDERS = []  # find(issuer, sub) -> the account, or None
PURGES = []  # purge() -> {kind: number deleted}


def register_person_data(tables, export=None, erase=None):
    """Register an app's part of a person's data: ``tables`` {"app_label.model": what it holds of the person};
    ``export(user)`` returns {section: JSON-able data}; ``erase(user)`` runs inside the erasure's transaction
    before the account row is deleted (whose cascade removes what refers to it) and returns an Erased."""
    PERSONAL_TABLES.update(tables)
    part = PersonData(export, erase)
    if part not in PARTS:
        PARTS.append(part)


def register_person_finder(find):
    """Register ``find(issuer, sub)``: the account of a person's LMS identity (the id an admin is given), or None."""
    if find not in FINDERS:
        FINDERS.append(find)


def register_retention(purge):
    """Register ``purge()``, a part of the daily retention run: deletes what is past its time, returns
    {kind: number deleted} (kinds as the purge_expired_data command prints them)."""
    if purge not in PURGES:
        PURGES.append(purge)


def user_references():
    """Every (table, field) of the installed models that refers to an account, auto-created join tables included."""
    from django.apps import apps

    user_model = get_user_model()
    return sorted((model._meta.label_lower, field.name)
                  for model in apps.get_models(include_auto_created=True)
                  for field in model._meta.get_fields()
                  if field.concrete and field.is_relation and field.related_model is user_model)


class UnknownPerson(LookupError):
    """No account matches the given id, username or LMS identity."""


def find_user(identifier=None, *, issuer=None, sub=None):
    """The account by its numeric id or username, or by the LMS's issuer and subject (the id an admin is given;
    the apps that know LMS identities registered how to find one: register_person_finder)."""
    if issuer or sub:
        for find in FINDERS:
            user = find(issuer, sub)
            if user is not None:
                return user
        raise UnknownPerson(f"no account for issuer {issuer!r} and subject {sub!r}")
    users = get_user_model().objects
    try:
        if str(identifier).isdigit():
            return users.get(pk=int(identifier))
        return users.get(username=identifier)
    except get_user_model().DoesNotExist:
        raise UnknownPerson(f"no account for {identifier!r}") from None


def _session_model():
    """The model of the configured session engine (SESSION_ENGINE: courses.sessions)."""
    return import_module(settings.SESSION_ENGINE).SessionStore.get_model_class()


def _sessions_of(user_id):
    """The stored sessions logged in as this account (their data is signed, so each is decoded)."""
    return [s.pk for s in _session_model().objects.filter(expire_date__gt=timezone.now())
            if str(s.get_decoded().get("_auth_user_id")) == str(user_id)]


def export_user_data(user_id):
    """Everything stored about one person, as JSON-able data: the account, then each app's part (LMS identities,
    roles, API tokens, chats, practice, question work), the admin log and the number of live sessions."""
    user = get_user_model().objects.get(pk=user_id)
    data = {"user_id": user_id, "exported_at": timezone.now().isoformat(),
            "account": {"username": user.username, "joined": user.date_joined.isoformat(),
                        "last_login": user.last_login.isoformat() if user.last_login else None,
                        "staff": user.is_staff, "superuser": user.is_superuser,
                        "groups": list(user.groups.values_list("name", flat=True)),
                        "permissions": list(user.user_permissions.values_list("codename", flat=True))}}
    for part in PARTS:
        if part.export:
            data.update(part.export(user))
    data["admin_actions"] = [{"time": e.action_time.isoformat(), "object": e.object_repr,
                              "change": e.get_change_message()}
                             for e in LogEntry.objects.filter(user=user).order_by("action_time")]
    data["active_sessions"] = len(_sessions_of(user_id))
    return data


def delete_user_data(user_id):
    """Erase one person: each app's part (tutor: chats and practice, and the Redis copies of their answers), the
    sessions, and the account with its LMS identities, roles, API tokens and admin log (the database cascades);
    question sets and whole-text runs they generated and their changes to questions stay with the course without
    the author. Returns the number of rows deleted per table."""
    user = get_user_model().objects.get(pk=user_id)
    sessions = _sessions_of(user_id)
    with transaction.atomic():
        erased = [part.erase(user) for part in PARTS if part.erase]
        _session_model().objects.filter(pk__in=sessions).delete()
        _count, by_table = user.delete()
    for done in erased:
        if done.after:
            done.after()
    counts = {label.lower(): n for label, n in by_table.items() if n}
    for done in erased:
        counts.update(done.counts)
    counts["sessions.session"] = len(sessions)
    log.info("erased user %s: %s", user_id, counts)
    return {table: n for table, n in counts.items() if n}


# --- Retention ----------------------------------------------------------------------------------------------------

def purge_expired_data():
    """The daily retention run: expired sessions, then each app's part (register_retention); returns what it
    deleted, per kind."""
    sessions, _ = _session_model().objects.filter(expire_date__lt=timezone.now()).delete()
    counts = {"sessions": sessions}
    for purge in PURGES:
        counts.update(purge())
    return counts
