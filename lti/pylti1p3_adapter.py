"""Every private name of pylti1p3 that the tool relies on, in one place, for the version it was written for.

pylti1p3 offers no public way to read a launch's posted parameters, its decoded id_token body or its registration,
nor to forget a cached platform key set (its cache key is built inside ``MessageLaunch.fetch_public_key``). The
launch (lti.launch) reaches them through these functions only; tests/test_lti_pylti1p3_adapter.py checks that
the installed pylti1p3 is WRITTEN_FOR and still has each name with the same meaning, so an upgrade fails there,
loudly, before anything else (docs/upgrade.md, "Libraries' internals").
"""

import hashlib

WRITTEN_FOR = "2.0.0"


def request_param(launch, key):
    """A parameter the platform posted with the launch (pylti1p3: MessageLaunch._get_request_param)."""
    return launch._get_request_param(key)


def jwt_body(launch):
    """The launch's id_token claims (pylti1p3: MessageLaunch._get_jwt_body)."""
    return launch._get_jwt_body()


def id_token(launch):
    """The launch's raw id_token (pylti1p3: MessageLaunch._get_id_token)."""
    return launch._get_id_token()


def registration(launch):
    """pylti1p3's Registration the launch found for its issuer and client (MessageLaunch._registration)."""
    return launch._registration


def key_set_cache_key(key_set_url):
    """pylti1p3's cache key of a fetched platform key set (MessageLaunch.fetch_public_key builds it inline)."""
    return "key-set-url-" + hashlib.md5(key_set_url.encode("utf-8")).hexdigest()


def fetches_key_set(launch):
    """Whether the launch's platform keys come from its key set URL through the cache (not configured locally)."""
    found = registration(launch)
    return bool(found.get_key_set_url() and launch._public_key_cache_data_storage
                and not getattr(found, "local_key_set", False))


def forget_key_set(launch):
    """Drop the platform key set cached for this launch's registration, so the next get_public_key fetches it from
    the platform again."""
    found = registration(launch)
    launch._public_key_cache_data_storage.set_value(key_set_cache_key(found.get_key_set_url()), None, 1)
    found.set_key_set(None)
