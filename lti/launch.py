"""OIDC login initiation and the validated LTI 1.3 launch, mapped to Course, user and Membership.

pylti1p3 does the JWT work; this module adds what it leaves out: the nonce is consumed (single use,
also recorded in the database), the state must come back in the browser that started the login and
must belong to that login's nonce, the audience/azp and exp/iat are checked with a small leeway, and
only resource-link and deep-linking messages of LTI 1.3.0 from known deployments are accepted.

The state is bound to the browser by a cookie, or, where the LMS iframe gets no cookies (third-party
cookies blocked), by the platform's storage (1EdTech "LTI Client Side postMessages" / platform storage):
the login page puts state and nonce into the platform's storage frame, and at launch a page of the tool
reads them back and posts them with the id_token. That answer is accepted only from the tool's own page
(its Origin header), for a login that used platform storage, with both values equal to the launch's.
"""

import logging
from urllib.parse import parse_qs, urlencode, urlparse

import jwt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from pylti1p3.contrib.django import DjangoMessageLaunch, DjangoOIDCLogin
from pylti1p3.contrib.django.launch_data_storage.cache import DjangoCacheDataStorage
from pylti1p3.exception import LtiException, OIDCException

from courses.models import Course, Membership
from lti import pylti1p3_adapter as pylti
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

    def __init__(self, message, reason, retry_url=""):
        super().__init__(reason)
        self.message = message
        self.reason = reason
        self.retry_url = retry_url  # the login again, for a new top-level window (first-party cookies)


def map_role(roles):
    """The Membership role for a list of LTI role URIs or short names (highest wins; default learner)."""
    found = set()
    for role in roles or []:
        name = str(role).rsplit("#", 1)[-1].rsplit("/", 1)[-1].lower()
        if name in ROLE_MAP:
            found.add(ROLE_MAP[name])
    return next((r for r in ROLE_RANK if r in found), Membership.LEARNER)


class ToolCacheStorage(DjangoCacheDataStorage):
    """pylti1p3's Redis storage without its own session cookie: in the LMS iframe that cookie may never come
    back, and the browser binding is the state check below (cookie or platform storage)."""

    def get_session_cookie_name(self):
        """None: keys are not scoped by a pylti1p3 session cookie."""
        return None


def _storage():
    return ToolCacheStorage(cache_name="default")


def _state_key(state):
    return f"lti:state:{state}"


LOGIN_PARAMS = ("iss", "login_hint", "target_link_uri", "lti_message_hint", "lti_deployment_id", "client_id",
                "lti1p3_new_window")  # the last: the login runs in a window opened from the LMS frame
STORAGE_CHECKED = "lti_storage_checked"  # marks the tool page's post of what the platform storage returned


def origin_of(url):
    """scheme://host[:port] of a URL."""
    parsed = urlparse(url or "")
    return f"{parsed.scheme}://{parsed.netloc}" if parsed.scheme and parsed.netloc else ""


def _param(request, key):
    return request.GET.get(key) or request.POST.get(key) or ""


class LoginStart:
    """An OIDC login the tool has started: pylti1p3's redirect response, the state and nonce it issued, where
    it sends the browser, and the platform storage frame named by the LMS (lti_storage_target), if any."""

    def __init__(self, response, state, nonce, storage_target, platform_origin):
        self.response, self.state, self.nonce = response, state, nonce
        self.auth_url = response["Location"]
        self.storage_target, self.platform_origin = storage_target, platform_origin

    def login_url(self, **extra):
        """The tool's login URL with this login's initiation parameters (to retry it elsewhere)."""
        return login_url(state_record(self.state) or {}, **extra)


def login_url(record, **extra):
    """The tool's /lti/login URL repeating the initiation parameters recorded for a state."""
    params = {k: v for k, v in (record.get("params") or {}).items() if v}
    params.update(extra)
    return reverse("lti:login") + "?" + urlencode(params)


def state_record(state):
    """What the login recorded for a state (nonce, storage target, platform origin, initiation params), or None."""
    record = cache.get(_state_key(state)) if state else None
    return record if isinstance(record, dict) else None


def start_login(request, launch_url):
    """The start of an OIDC login: the redirect to the platform's authorization endpoint, with state and nonce."""
    login = DjangoOIDCLogin(request, DatabaseToolConf(), launch_data_storage=_storage())
    # pylti1p3's own nonce key: kept as long as a login, not a day
    login.set_launch_data_storage(_storage()).set_launch_data_lifetime(STATE_TTL)
    try:
        response = login.redirect(launch_url)
    except OIDCException as exc:
        raise LaunchRejected(_("This learning platform is not registered with the tool."), f"login: {exc}") from exc
    query = parse_qs(urlparse(response["Location"]).query)
    state, nonce = query["state"][0], query["nonce"][0]
    storage_target = _param(request, "lti_storage_target")[:200]
    platform_origin = origin_of(response["Location"])
    cache.set(_state_key(state), {"nonce": nonce, "storage": storage_target, "platform_origin": platform_origin,
                                  "params": {k: _param(request, k) for k in LOGIN_PARAMS}}, STATE_TTL)
    return LoginStart(response, state, nonce, storage_target, platform_origin)


def has_state_cookie(request, state):
    """Whether the state cookie set at login came back with this request."""
    return bool(state) and request.COOKIES.get("lti1p3-" + state) == state


def storage_check(request):
    """What the tool's page needs to fetch state and nonce from the platform's storage, or None.

    Only for the platform's own post of the id_token, when the state cookie did not come back and the
    login used platform storage (or the platform names its storage frame now). Everything is validated
    again, strictly, when the page posts the answer back.
    """
    if request.POST.get(STORAGE_CHECKED):
        return None
    state = request.POST.get("state", "")
    record = state_record(state)
    if record is None or has_state_cookie(request, state):
        return None
    target = (request.POST.get("lti_storage_target") or record.get("storage") or "")[:200]
    if not target:
        return None
    try:
        nonce = jwt.decode(request.POST.get("id_token", ""), options={"verify_signature": False}).get("nonce")
    except jwt.InvalidTokenError:
        return None
    if not isinstance(nonce, str) or not nonce:
        return None
    return {"id_token": request.POST["id_token"], "state": state, "nonce": nonce, "target": target,
            "platform_origin": record["platform_origin"], "checked_field": STORAGE_CHECKED}


def own_origins(request):
    """The origins this tool's pages are served from: this request's and PUBLIC_URL's."""
    return {f"{request.scheme}://{request.get_host()}", origin_of(settings.PUBLIC_URL)}


class ToolMessageLaunch(DjangoMessageLaunch):
    """pylti1p3's launch with single-use nonces, browser-bound state, audience and clock checks."""

    def validate_state(self):
        """The state must be posted, and match the state cookie set in this browser at login or, without
        the cookie, the state our own page read back from the platform's storage."""
        state = pylti.request_param(self, "state")
        if not state:
            raise LtiException("missing state")
        if pylti.request_param(self, STORAGE_CHECKED):
            self._validate_storage_answer(state)
        elif not has_state_cookie(self.django_request, state):
            raise LtiException("state does not match this browser (no state cookie)")
        return self

    def _validate_storage_answer(self, state):
        record = state_record(state)
        if record is None:
            raise LtiException("unknown or expired state")
        if not record.get("storage"):
            raise LtiException("platform storage answer for a login that did not use platform storage")
        origin = self.django_request.headers.get("Origin", "")
        if origin not in own_origins(self.django_request):
            raise LtiException(f"platform storage answer not posted by the tool's own page (Origin {origin!r})")
        if pylti.request_param(self, "lti_storage_state") != state:
            raise LtiException("state from platform storage does not match (missing or different)")

    def validate_nonce(self):
        """The nonce must be the one issued with this state, not yet used; it is consumed at the end."""
        nonce = pylti.jwt_body(self).get("nonce")
        if not nonce:
            raise LtiException("missing nonce")
        if UsedNonce.objects.filter(nonce=nonce).exists():
            raise LtiException("replayed nonce")
        record = state_record(pylti.request_param(self, "state"))
        if record is None:
            raise LtiException("unknown or expired state")
        if record["nonce"] != nonce:
            raise LtiException("nonce does not belong to this state")
        if pylti.request_param(self, STORAGE_CHECKED) and pylti.request_param(self, "lti_storage_nonce") != nonce:
            raise LtiException("nonce from platform storage does not match (missing or different)")
        return self

    def validate_registration(self):
        """A registration must exist for (iss, aud); with several audiences azp must name our client."""
        super().validate_registration()
        body = pylti.jwt_body(self)
        aud = body.get("aud")
        auds = aud if isinstance(aud, list) else [aud]
        if len(auds) > 1 and body.get("azp") != pylti.registration(self).get_client_id():
            raise LtiException("azp does not name this tool")
        return self

    def get_public_key(self):
        """The platform key named by the token's kid; a kid missing from the cached JWKS refetches it once."""
        try:
            return super().get_public_key()
        except LtiException:
            if not pylti.fetches_key_set(self) or not refetch_allowed(self):
                raise
            pylti.forget_key_set(self)
            return super().get_public_key()

    def validate_jwt_signature(self):
        """Signature against the platform JWKS (cached), audience = client_id, exp/iat with leeway. A signature
        that fails against the cached key set fetches the set once more (at most once a minute per platform):
        a platform may rotate its key under the same kid."""
        public_key, alg = self.get_public_key()
        try:
            self._check_token(public_key, alg)
        except LtiException as exc:
            if not isinstance(exc.__cause__, jwt.InvalidSignatureError) or not pylti.fetches_key_set(self) \
                    or not refetch_allowed(self):
                raise
            pylti.forget_key_set(self)
            log.info("lti: signature failed with the cached key of %s; fetched its key set again",
                     pylti.registration(self).get_issuer())
            self._check_token(*self.get_public_key())
        return self

    def _check_token(self, public_key, alg):
        try:
            jwt.decode(pylti.id_token(self), public_key, algorithms=[alg],
                       audience=pylti.registration(self).get_client_id(), leeway=settings.LTI_LEEWAY_SECONDS,
                       options={"require": ["exp", "iat", "aud", "iss", "sub"]})
        except jwt.InvalidTokenError as exc:
            raise LtiException(f"id_token rejected: {exc}") from exc

    def validate_message(self):
        """Only LTI 1.3.0 resource-link and deep-linking requests."""
        body = pylti.jwt_body(self)
        if body.get(CLAIM + "version") != "1.3.0":
            raise LtiException(f"unsupported LTI version {body.get(CLAIM + 'version')!r}")
        if body.get(CLAIM + "message_type") not in (RESOURCE_LINK, DEEP_LINKING):
            raise LtiException(f"unsupported message type {body.get(CLAIM + 'message_type')!r}")
        return super().validate_message()

    def save_launch_data(self):
        """Keep nothing of the launch message: pylti1p3 would cache the whole id_token body (names, e-mail,
        whatever the LMS sends) in Redis for a day for MessageLaunch.from_cache, which the tool never uses;
        everything it needs is read from the validated launch in this request (lti.views, lti.deep_linking)."""
        return self

    def consume_nonce(self):
        """Record the nonce as used and forget the state; a second use is a replay."""
        registration = pylti.registration(self).model
        try:
            with transaction.atomic():
                UsedNonce.objects.create(registration=registration, nonce=pylti.jwt_body(self)["nonce"])
        except IntegrityError:
            raise LtiException("replayed nonce") from None
        state_key = _state_key(pylti.request_param(self, "state"))
        transaction.on_commit(lambda: cache.delete(state_key))  # a launch rolled back keeps its state


JWKS_REFETCH_SECONDS = 60  # a platform's key set is fetched again (unknown kid, failed signature) at most this often


def refetch_allowed(launch):
    """Whether the launch's platform key set may be fetched again now: once per JWKS_REFETCH_SECONDS per
    registration, so forged tokens cannot make the tool hammer the platform."""
    row = pylti.registration(launch).model
    return cache.add(f"lti:jwks-refetch:{row.pk}", 1, timeout=JWKS_REFETCH_SECONDS)


def new_launch(request):
    """A ToolMessageLaunch for this request, with the JWKS cached in Redis."""
    launch = ToolMessageLaunch(request, DatabaseToolConf(), launch_data_storage=_storage(),
                               requests_session=PlatformOnlySession())
    launch.django_request = request
    launch.set_public_key_caching(_storage(), cache_lifetime=settings.LTI_JWKS_CACHE_SECONDS)
    return launch


BROWSER_BINDING = ("no state cookie", "platform storage")


def validate_launch(request):
    """The validated launch (pylti1p3 object) or LaunchRejected."""
    launch = new_launch(request)
    try:
        launch.validate()
    except LtiException as exc:
        if any(reason in str(exc) for reason in BROWSER_BINDING):
            record = state_record(request.POST.get("state", ""))
            raise LaunchRejected(
                _("Your browser did not keep the tool's sign-in inside the course page (third-party cookies "
                  "are blocked). Please open the tool again from your course, or open it in a new window."),
                str(exc), retry_url=login_url(record, lti1p3_new_window="1") if record else "") from exc
        raise LaunchRejected(_("The launch from your learning platform could not be verified. "
                               "Please open the tool again from your course."), str(exc)) from exc
    return launch


def _target_ok(request, target):
    host = urlparse(target or "").netloc
    return host in {request.get_host(), urlparse(settings.PUBLIC_URL).netloc}


@transaction.atomic
def apply_launch(request, launch):
    """Consume the launch's nonce and create/update the pseudonymous user, the course of the LTI context and the
    membership, in one transaction: a launch that fails here has not spent its nonce."""
    try:
        launch.consume_nonce()
    except LtiException as exc:
        raise LaunchRejected(_("The launch from your learning platform could not be verified. "
                               "Please open the tool again from your course."), str(exc)) from exc
    body = launch.get_launch_data()
    registration = pylti.registration(launch).model
    if not _target_ok(request, body.get(CLAIM + "target_link_uri")):
        raise LaunchRejected(_("The launch was meant for another tool."),
                             f"target_link_uri {body.get(CLAIM + 'target_link_uri')!r} is not this tool")
    deployment = Deployment.objects.get(registration=registration, deployment_id=body[CLAIM + "deployment_id"])
    context = body.get(CLAIM + "context") or {}
    if not context.get("id"):
        raise LaunchRejected(_("Please open the tool from inside a course."), "launch has no context")
    nrps = body.get("https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice") or {}
    ags = body.get("https://purl.imsglobal.org/spec/lti-ags/claim/endpoint") or {}
    title = context.get("title") or context.get("label") or context["id"]
    mapping = LtiContext.objects.for_launch(  # two first launches at once: one course, both go in
        registration, deployment, context["id"],
        lambda: course_of_context(registration.issuer, context["id"]) or Course.objects.create(title=title[:255]))
    fresh = (title[:255], nrps.get("context_memberships_url", mapping.memberships_url),
             ags.get("lineitems", mapping.lineitems_url))
    if fresh != (mapping.title, mapping.memberships_url, mapping.lineitems_url):
        mapping.title, mapping.memberships_url, mapping.lineitems_url = fresh
        mapping.save()
    user = user_for(registration, body["sub"], body.get("name", ""))
    role = map_role(body.get(CLAIM + "roles"))
    membership, _created = Membership.objects.get_or_create(course=mapping.course, user=user, defaults={"role": role})
    membership.last_launch_at = timezone.now()
    if membership.role != role:
        membership.role = role
        membership.save(update_fields=["role", "updated_at", "last_launch_at"])
    else:
        membership.save(update_fields=["last_launch_at"])
    if membership.is_teaching:
        from lti.tasks import sync_roster_soon

        sync_roster_soon(mapping)  # members who left the course in the LMS lose access here too
    return membership


def course_of_context(issuer, context_id):
    """The course an LMS context already has under another registration or deployment of the same platform
    (the tool registered again, a second tool type), or None.

    The platform is its issuer: Moodle's context id is the site's course id, so the same issuer and id are
    the same course, and a re-registered tool finds the course with its texts again.
    """
    found = (LtiContext.objects.filter(registration__issuer=issuer, context_id=context_id)
             .select_related("course").order_by("-updated_at").first())
    return found.course if found else None


def user_for(registration, sub, name=""):
    """The Django user of a platform user: created once with a pseudonymous username (from issuer and sub),
    so every registration of the same platform links to the same person."""
    link = LtiUser.objects.select_related("user").filter(registration=registration, sub=sub).first()
    if link is None:
        user, _created = get_user_model().objects.get_or_create(username=pseudonym(registration.issuer, sub))
        if _created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        link, _created = LtiUser.objects.get_or_create(registration=registration, sub=sub, defaults={"user": user})
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
