"""OIDC login initiation and the validated LTI 1.3 launch, mapped to Course, user and Membership.

pylti1p3 does the JWT work; this module adds what it leaves out: the nonce is consumed (single use,
also recorded in the database), the state must come back in the browser that started the login and
must belong to that login's nonce, the audience/azp and exp/iat are checked with a small leeway, and
only resource-link and deep-linking messages of LTI 1.3.0 from known deployments are accepted.
"""

import hashlib
import logging
from urllib.parse import parse_qs, urlparse

import jwt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from pylti1p3.contrib.django import DjangoMessageLaunch, DjangoOIDCLogin
from pylti1p3.contrib.django.launch_data_storage.cache import DjangoCacheDataStorage
from pylti1p3.exception import LtiException, OIDCException

from courses.models import Course, Membership
from lti.models import Deployment, LtiContext, LtiUser, UsedNonce, pseudonym
from lti.tool import DatabaseToolConf, PlatformOnlySession

log = logging.getLogger(__name__)

STATE_TTL = 600
RESOURCE_LINK, DEEP_LINKING = "LtiResourceLinkRequest", "LtiDeepLinkingRequest"
CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
ROLE_MAP = {
    "instructor": Membership.INSTRUCTOR,
    "contentdeveloper": Membership.INSTRUCTOR,
    "teachingassistant": Membership.TEACHING_ASSISTANT,
    "administrator": Membership.ADMINISTRATOR,
    "learner": Membership.LEARNER,
    "student": Membership.LEARNER,
}
ROLE_RANK = [Membership.ADMINISTRATOR, Membership.INSTRUCTOR, Membership.TEACHING_ASSISTANT, Membership.LEARNER]


class LaunchRejected(Exception):
    """A launch or login the tool refuses; ``message`` is for the person, ``reason`` for the log."""

    def __init__(self, message, reason):
        super().__init__(reason)
        self.message = message
        self.reason = reason


def map_role(roles):
    """The Membership role for a list of LTI role URIs or short names (highest wins; default learner)."""
    found = set()
    for role in roles or []:
        name = str(role).rsplit("#", 1)[-1].rsplit("/", 1)[-1].lower()
        if name in ROLE_MAP:
            found.add(ROLE_MAP[name])
    return next((r for r in ROLE_RANK if r in found), Membership.LEARNER)


def _storage():
    return DjangoCacheDataStorage(cache_name="default")


def _state_key(state):
    return f"lti:state:{state}"


def start_login(request, launch_url):
    """The redirect to the platform's authorization endpoint for an OIDC login initiation request."""
    login = DjangoOIDCLogin(request, DatabaseToolConf(), launch_data_storage=_storage())
    try:
        response = login.redirect(launch_url)
    except OIDCException as exc:
        raise LaunchRejected(_("This learning platform is not registered with the tool."), f"login: {exc}") from exc
    query = parse_qs(urlparse(response["Location"]).query)
    cache.set(_state_key(query["state"][0]), query["nonce"][0], STATE_TTL)
    return response


class ToolMessageLaunch(DjangoMessageLaunch):
    """pylti1p3's launch with single-use nonces, browser-bound state, audience and clock checks."""

    def validate_state(self):
        """The state must be posted and match the state cookie set in this browser at login."""
        state = self._get_request_param("state")
        if not state:
            raise LtiException("missing state")
        if self._cookie_service.get_cookie(state) != state:
            raise LtiException("state does not match this browser (no state cookie)")
        return self

    def validate_nonce(self):
        """The nonce must be the one issued with this state, not yet used; it is consumed at the end."""
        nonce = self._get_jwt_body().get("nonce")
        if not nonce:
            raise LtiException("missing nonce")
        if UsedNonce.objects.filter(nonce=nonce).exists():
            raise LtiException("replayed nonce")
        expected = cache.get(_state_key(self._get_request_param("state")))
        if expected is None:
            raise LtiException("unknown or expired state")
        if expected != nonce:
            raise LtiException("nonce does not belong to this state")
        return self

    def validate_registration(self):
        """A registration must exist for (iss, aud); with several audiences azp must name our client."""
        super().validate_registration()
        body = self._get_jwt_body()
        aud = body.get("aud")
        auds = aud if isinstance(aud, list) else [aud]
        if len(auds) > 1 and body.get("azp") != self._registration.get_client_id():
            raise LtiException("azp does not name this tool")
        return self

    def get_public_key(self):
        """The platform key named by the token's kid; a kid missing from the cached JWKS refetches it once."""
        try:
            return super().get_public_key()
        except LtiException:
            url = self._registration.get_key_set_url()
            if self._registration.model.test_platform or not url or not self._public_key_cache_data_storage:
                raise
            self._public_key_cache_data_storage.set_value(
                "key-set-url-" + hashlib.md5(url.encode()).hexdigest(), None, 1)
            self._registration.set_key_set(None)
            return super().get_public_key()

    def validate_jwt_signature(self):
        """Signature against the platform JWKS (cached), audience = client_id, exp/iat with leeway."""
        public_key, alg = self.get_public_key()
        try:
            jwt.decode(self._get_id_token(), public_key, algorithms=[alg],
                       audience=self._registration.get_client_id(), leeway=settings.LTI_LEEWAY_SECONDS,
                       options={"require": ["exp", "iat", "aud", "iss", "sub"]})
        except jwt.InvalidTokenError as exc:
            raise LtiException(f"id_token rejected: {exc}") from exc
        return self

    def validate_message(self):
        """Only LTI 1.3.0 resource-link and deep-linking requests."""
        body = self._get_jwt_body()
        if body.get(CLAIM + "version") != "1.3.0":
            raise LtiException(f"unsupported LTI version {body.get(CLAIM + 'version')!r}")
        if body.get(CLAIM + "message_type") not in (RESOURCE_LINK, DEEP_LINKING):
            raise LtiException(f"unsupported message type {body.get(CLAIM + 'message_type')!r}")
        return super().validate_message()

    def consume_nonce(self):
        """Record the nonce as used and forget the state; a second use is a replay."""
        registration = self._registration.model
        try:
            with transaction.atomic():
                UsedNonce.objects.create(registration=registration, nonce=self._get_jwt_body()["nonce"])
        except IntegrityError:
            raise LtiException("replayed nonce") from None
        cache.delete(_state_key(self._get_request_param("state")))


def new_launch(request):
    """A ToolMessageLaunch for this request, with the JWKS cached in Redis."""
    launch = ToolMessageLaunch(request, DatabaseToolConf(), launch_data_storage=_storage(),
                               requests_session=PlatformOnlySession())
    launch.set_public_key_caching(_storage(), cache_lifetime=settings.LTI_JWKS_CACHE_SECONDS)
    return launch


def validate_launch(request):
    """The validated launch (pylti1p3 object) or LaunchRejected."""
    launch = new_launch(request)
    try:
        launch.validate()
        launch.consume_nonce()
    except LtiException as exc:
        if "no state cookie" in str(exc):
            raise LaunchRejected(_("Your browser did not keep the tool's sign-in cookie inside the course page "
                                   "(third-party cookies are blocked). Please open the tool again from your "
                                   "course, or set it to open in a new window."), str(exc)) from exc
        raise LaunchRejected(_("The launch from your learning platform could not be verified. "
                               "Please open the tool again from your course."), str(exc)) from exc
    return launch


def _target_ok(request, target):
    host = urlparse(target or "").netloc
    return host in {request.get_host(), urlparse(settings.PUBLIC_URL).netloc}


@transaction.atomic
def apply_launch(request, launch):
    """Create/update the pseudonymous user, the course of the LTI context and the membership."""
    body = launch.get_launch_data()
    registration = launch._registration.model
    if not _target_ok(request, body.get(CLAIM + "target_link_uri")):
        raise LaunchRejected(_("The launch was meant for another tool."),
                             f"target_link_uri {body.get(CLAIM + 'target_link_uri')!r} is not this tool")
    deployment = Deployment.objects.get(registration=registration, deployment_id=body[CLAIM + "deployment_id"])
    context = body.get(CLAIM + "context") or {}
    if not context.get("id"):
        raise LaunchRejected(_("Please open the tool from inside a course."), "launch has no context")
    mapping = LtiContext.objects.filter(registration=registration, deployment=deployment,
                                        context_id=context["id"]).select_related("course").first()
    nrps = body.get("https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice") or {}
    ags = body.get("https://purl.imsglobal.org/spec/lti-ags/claim/endpoint") or {}
    title = context.get("title") or context.get("label") or context["id"]
    if mapping is None:
        course = Course.objects.create(title=title[:255])
        mapping = LtiContext(registration=registration, deployment=deployment, context_id=context["id"], course=course)
    fresh = (title[:255], nrps.get("context_memberships_url", mapping.memberships_url),
             ags.get("lineitems", mapping.lineitems_url))
    if mapping.pk is None or fresh != (mapping.title, mapping.memberships_url, mapping.lineitems_url):
        mapping.title, mapping.memberships_url, mapping.lineitems_url = fresh
        mapping.save()
    user = user_for(registration, body["sub"], body.get("name", ""))
    role = map_role(body.get(CLAIM + "roles"))
    membership, _created = Membership.objects.get_or_create(course=mapping.course, user=user, defaults={"role": role})
    if membership.role != role:
        membership.role = role
        membership.save(update_fields=["role", "updated_at"])
    return membership


def user_for(registration, sub, name=""):
    """The Django user of a platform user: created once with a pseudonymous username."""
    link = LtiUser.objects.select_related("user").filter(registration=registration, sub=sub).first()
    if link is None:
        user, _created = get_user_model().objects.get_or_create(username=pseudonym(registration.issuer, sub))
        if _created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        link = LtiUser.objects.create(registration=registration, sub=sub, user=user)
    if name and link.name != name[:255]:
        link.name = name[:255]
        link.save(update_fields=["name"])
    return link.user


def prune_nonces(older_than_seconds=86400):
    """Forget used nonces older than a day: their id_tokens have long expired, so a replay fails on exp."""
    cutoff = timezone.now() - timezone.timedelta(seconds=older_than_seconds)
    return UsedNonce.objects.filter(used_at__lt=cutoff).delete()[0]


def launch_language(body):
    """'de' or 'en' from the launch presentation locale, else None."""
    locale = ((body.get(CLAIM + "launch_presentation") or {}).get("locale") or "").lower()
    code = locale.replace("_", "-").split("-")[0]
    return code if code in {"de", "en"} else None
