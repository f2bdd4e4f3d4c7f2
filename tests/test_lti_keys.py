"""Tool keys: created on first use, rotated with rotate_keys, old public keys published for a grace period."""

import pytest
from django.core.management import call_command
from django.utils import timezone

from lti.keys import active_key, tool_jwks
from lti.models import ToolKey

pytestmark = pytest.mark.django_db


def test_rotation_keeps_the_old_key_published_during_the_grace_period(settings):
    old = active_key()
    call_command("rotate_keys")
    new = active_key()

    assert new.kid != old.kid
    assert [k["kid"] for k in tool_jwks()["keys"]] == [new.kid, old.kid]

    ToolKey.objects.filter(pk=old.pk).update(
        retired_at=timezone.now() - timezone.timedelta(seconds=settings.LTI_KEY_GRACE_SECONDS + 1))
    assert [k["kid"] for k in tool_jwks()["keys"]] == [new.kid]


def test_only_one_key_is_active():
    active_key()
    active_key()
    assert ToolKey.objects.filter(active=True).count() == 1


def test_two_first_uses_at_once_agree_on_one_key(monkeypatch):
    """The lti worker's threads posting a score and syncing a roster on a fresh installation both found no key (a
    lock on no row locks nothing) and both made one: the loser's IntegrityError failed the score. Here the other
    thread's key is committed right after this one's looks found none."""
    from django.db.models.query import QuerySet

    from lti import keys

    other = keys._create_key()  # the other thread's, committed after our looks
    first = QuerySet.first
    looks = []

    def early_first(queryset):
        if queryset.model is ToolKey and len(looks) < 2:
            looks.append(True)
            return None  # our looks (also one "for update") came before the other thread's commit
        return first(queryset)

    monkeypatch.setattr(QuerySet, "first", early_first)
    assert active_key() == other
    monkeypatch.undo()
    assert ToolKey.objects.filter(active=True).count() == 1


def test_old_used_nonces_are_pruned():
    from lti.models import Registration, UsedNonce

    reg = Registration.objects.create(issuer="https://lms.example", client_id="c", auth_login_url="https://lms.example/a",
                                      key_set_url="https://lms.example/k")
    old = UsedNonce.objects.create(registration=reg, nonce="old")
    UsedNonce.objects.filter(pk=old.pk).update(used_at=timezone.now() - timezone.timedelta(days=2))
    UsedNonce.objects.create(registration=reg, nonce="fresh")
    call_command("prune_lti_nonces")
    assert list(UsedNonce.objects.values_list("nonce", flat=True)) == ["fresh"]
