"""The built-in test platform: a tiny LMS inside the tool for trying it without Moodle (never in production).

It has its own RSA key, is registered like any platform (issuer PUBLIC_URL/lti/test-platform), and its
demo context maps to the demo course. Its pages (lti/test_platform.py) perform a real signed LTI 1.3
launch through the tool's own /lti/login and /lti/launch.
"""

import json
import logging
import time
import uuid

import jwt
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from jwcrypto.jwk import JWK

from lti.keys import new_key_pair, public_jwk
from lti.models import Deployment, LtiContext, Registration, TestPlatformKey

log = logging.getLogger(__name__)

CLIENT_ID = "test-platform-tool"
DEPLOYMENT_ID = "1"
CONTEXT_ID = "demo-course"
CONTEXT_TITLE = "Debian-Referenz (Demo)"
# login_hint -> (display name, LTI roles): the demo people of the test platform
DEMO_USERS = {
    "lecturer": ("Dr. Demo Dozentin", ["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"]),
    "ta": ("Demo Tutor", ["http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"]),
    "student-1": ("Alex Student", ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"]),
    "student-2": ("Sam Student", ["Learner"]),
}


def issuer():
    """The test platform's issuer: LTI_TEST_PLATFORM_URL (default PUBLIC_URL) + /lti/test-platform."""
    return (settings.LTI_TEST_PLATFORM_URL or settings.PUBLIC_URL) + "/lti/test-platform"


def tool_base():
    """Where the test platform sends the browser to reach the tool: PUBLIC_URL when the platform has a
    base URL of its own (a cross-site launch), else "" (the tool on the same host as the platform page)."""
    return settings.PUBLIC_URL if settings.LTI_TEST_PLATFORM_URL else ""


def _require_enabled():
    if not settings.LTI_TEST_PLATFORM:
        raise ImproperlyConfigured("the built-in LTI test platform is off (LTI_TEST_PLATFORM)")


def test_platform_enabled():
    """Whether the built-in test platform may exist here (never in production)."""
    return bool(settings.LTI_TEST_PLATFORM)


def platform_key():
    """The test platform's signing key, created once."""
    _require_enabled()
    key = TestPlatformKey.objects.order_by("created_at").first()
    if key is None:
        private, public = new_key_pair()
        key = TestPlatformKey.objects.create(kid=JWK.from_pem(public.encode()).thumbprint(),
                                             private_pem=private, public_pem=public)
    return key


def platform_jwks():
    """The test platform's JWKS."""
    key = platform_key()
    return {"keys": [public_jwk(key.public_pem, key.kid)]}


def local_key_set(registration):
    """The test platform's JWKS for its own registration (it lives in this process), else None."""
    return platform_jwks() if registration.test_platform else None


def ensure_test_platform():
    """Register the built-in test platform (idempotent) and map its demo context to the demo course.

    Returns the Registration, or None (with a log line) when LTI_TEST_PLATFORM is off, e.g. in production.
    """
    from courses.demo import ensure_demo_course

    if not test_platform_enabled():
        log.info("lti: the built-in test platform is off (LTI_TEST_PLATFORM); not registering it")
        return None
    platform_key()
    base = issuer()
    registration, _created = Registration.objects.update_or_create(
        issuer=base, client_id=CLIENT_ID,
        defaults={"name": "Built-in test platform", "auth_login_url": base + "/authorize",
                  "auth_token_url": base + "/token", "key_set_url": base + "/jwks",
                  "status": Registration.ACTIVE, "test_platform": True})
    deployment, _created = Deployment.objects.get_or_create(registration=registration, deployment_id=DEPLOYMENT_ID)
    if not LtiContext.objects.filter(registration=registration, deployment=deployment, context_id=CONTEXT_ID).exists():
        LtiContext.objects.create(registration=registration, deployment=deployment, context_id=CONTEXT_ID,
                                  course=ensure_demo_course(), title=CONTEXT_TITLE)
    return registration


def login_initiation_params(registration, login_hint, target_link_uri, message_hint="resource"):
    """The query of the third-party initiated login the platform sends to the tool's /lti/login."""
    return {"iss": registration.issuer, "login_hint": login_hint, "target_link_uri": target_link_uri,
            "lti_message_hint": message_hint, "client_id": registration.client_id,
            "lti_deployment_id": DEPLOYMENT_ID}


def build_id_token(registration, login_hint, nonce, target_link_uri, *, deep_linking=False, return_url="",
                   locale="de-DE"):
    """The signed id_token the test platform posts to the tool for a demo user."""
    name, roles = DEMO_USERS[login_hint]
    now = int(time.time())
    claims = {
        "iss": registration.issuer, "aud": registration.client_id, "azp": registration.client_id,
        "sub": f"demo-{login_hint}", "iat": now, "exp": now + 300, "nonce": nonce, "name": name,
        "https://purl.imsglobal.org/spec/lti/claim/deployment_id": DEPLOYMENT_ID,
        "https://purl.imsglobal.org/spec/lti/claim/version": "1.3.0",
        "https://purl.imsglobal.org/spec/lti/claim/roles": roles,
        "https://purl.imsglobal.org/spec/lti/claim/target_link_uri": target_link_uri,
        "https://purl.imsglobal.org/spec/lti/claim/context": {
            "id": CONTEXT_ID, "title": CONTEXT_TITLE, "label": "DEMO",
            "type": ["http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"]},
        "https://purl.imsglobal.org/spec/lti/claim/launch_presentation": {"locale": locale,
                                                                           "document_target": "iframe"},
    }
    if deep_linking:
        claims["https://purl.imsglobal.org/spec/lti/claim/message_type"] = "LtiDeepLinkingRequest"
        claims["https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"] = {
            "deep_link_return_url": return_url, "accept_types": ["ltiResourceLink"],
            "accept_presentation_document_targets": ["iframe", "window"], "data": uuid.uuid4().hex}
    else:
        claims["https://purl.imsglobal.org/spec/lti/claim/message_type"] = "LtiResourceLinkRequest"
        claims["https://purl.imsglobal.org/spec/lti/claim/resource_link"] = {"id": "demo-tutor",
                                                                            "title": "Kurs-Tutor"}
    key = platform_key()
    return jwt.encode(claims, key.private_pem, algorithm="RS256", headers={"kid": key.kid})


def dumps(data):
    """Compact JSON (for the test platform's pages)."""
    return json.dumps(data, indent=2, ensure_ascii=False)
