"""Access to a platform's LTI Advantage services: client_credentials with private_key_jwt, tokens cached in Redis."""

import hashlib
import time
import uuid

import jwt
from django.core.cache import cache
from pylti1p3.exception import LtiServiceException
from pylti1p3.service_connector import ServiceConnector

from lti import pylti1p3_adapter
from lti.tool import PlatformOnlySession, to_pylti


class CachedServiceConnector(ServiceConnector):
    """pylti1p3's ServiceConnector whose access tokens live in the Django cache until shortly before expiry."""

    def __init__(self, registration):
        super().__init__(to_pylti(registration), requests_session=PlatformOnlySession())
        self.registration = registration

    def cache_key(self, scopes):
        """Cache key of the token for this registration and scope set."""
        digest = hashlib.sha256(" ".join(sorted(scopes)).encode()).hexdigest()[:16]
        return f"lti:token:{self.registration.pk}:{digest}"

    def get_access_token(self, scopes):
        """A bearer token for the scopes: from the cache, else from the platform's token endpoint."""
        key = self.cache_key(scopes)
        token = cache.get(key)
        if token:
            return token
        reg = pylti1p3_adapter.registration(self)
        now = int(time.time())
        assertion = jwt.encode(
            {"iss": reg.get_client_id(), "sub": reg.get_client_id(),
             "aud": reg.get_auth_audience() or reg.get_auth_token_url(), "iat": now - 5, "exp": now + 60,
             "jti": "lti-service-token-" + uuid.uuid4().hex},
            reg.get_tool_private_key(), algorithm="RS256", headers={"kid": reg.get_kid()})
        response = self._requests_session.post(reg.get_auth_token_url(), data={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion, "scope": " ".join(scopes)})
        if not response.ok:
            raise LtiServiceException(response)
        answer = response.json()
        lifetime = int(answer.get("expires_in", 3600))
        cache.set(key, answer["access_token"], max(lifetime - 60, 1))
        return answer["access_token"]
