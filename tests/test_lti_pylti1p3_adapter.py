"""The private names of pylti1p3 the tool uses (lti/pylti1p3_adapter.py) are those of the version it was written
for: an upgrade of pylti1p3 fails here first, naming what to check (docs/upgrade.md, "Libraries' internals")."""

import hashlib
import inspect
from importlib.metadata import version

from pylti1p3.message_launch import MessageLaunch

from lti import pylti1p3_adapter


def test_pylti1p3_is_the_version_the_adapter_was_written_for():
    assert version("pylti1p3") == pylti1p3_adapter.WRITTEN_FOR, (
        "pylti1p3 changed: check every function of lti/pylti1p3_adapter.py against its new source, then set "
        "WRITTEN_FOR")


def test_the_private_methods_the_adapter_calls_exist_with_their_signatures():
    expected = {"_get_request_param": ["self", "key"], "_get_jwt_body": ["self"], "_get_id_token": ["self"]}
    for name, parameters in expected.items():
        assert list(inspect.signature(getattr(MessageLaunch, name)).parameters) == parameters, name
    source = inspect.getsource(MessageLaunch)
    assert "self._registration = config.find_registration_by_params(" in source  # validate_registration
    assert "self._public_key_cache_data_storage = data_storage" in source  # set_public_key_caching


def test_the_key_set_cache_key_is_the_one_pylti1p3_builds():
    source = inspect.getsource(MessageLaunch.fetch_public_key)
    assert '"key-set-url-" + hashlib.md5(key_set_url.encode("utf-8")).hexdigest()' in source
    url = "https://moodle.example.edu/mod/lti/certs.php"
    assert pylti1p3_adapter.key_set_cache_key(url) == "key-set-url-" + hashlib.md5(url.encode()).hexdigest()
