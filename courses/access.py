"""Who may see a course page: the course's access rule, the only membership check of every view.

Moodle shows the tool in an iframe, where browsers may drop third-party cookies. Every page a launch
opens therefore also carries a signed, short-lived *launch token* (query parameter ``lt``, form field
``lt`` or header ``X-Launch-Token``) naming the user and the course; views accept either it or the
session the launch opened. Views use the decorator ``course_member`` (sync and async views alike),
Python code builds links with ``tool_url``, and templates use the tags of ``courses/templatetags/access.py``
(``{% tool_url %}`` for links, ``{% course_form %}`` for forms, which writes the token field itself).

The API (``/api/v1/``, Django REST framework) follows the same rule through the authentication classes and the
permission below: an API token (``Authorization: Bearer …``, courses.models.ApiToken), a page's launch token
(header ``X-Launch-Token``; ``?lt=`` on safe methods) or the session; ``course_grant`` decides what each may do
in a course, on the same memberships as the pages.
"""

import functools
import logging
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

from asgiref.sync import iscoroutinefunction
from django.core import signing
from django.db import models
from django.http import HttpResponseForbidden
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from rest_framework import authentication, exceptions, permissions

from config.threads import db_in_thread
from courses.models import ApiToken, Course, Membership

log = logging.getLogger(__name__)

TOKEN_SALT = "lti.launch-token"  # unchanged since the token was made in lti/: open pages keep working
TOKEN_MAX_AGE = 8 * 3600
TOKEN_FIELD = "lt"


def make_launch_token(user_id, course_id):
    """A signed token binding this browser tab to (user, course) for a working day."""
    return signing.dumps({"u": user_id, "c": course_id}, salt=TOKEN_SALT, compress=True)


def tool_url(name, *args, token=None):
    """The URL of a named view, carrying the launch token (``?lt=``) when one is given."""
    url = reverse(name, args=args)
    if token:
        url += ("&" if "?" in url else "?") + urlencode({TOKEN_FIELD: token})
    return url


def read_launch_token(token):
    """(user_id, course_id) from a valid token, else None."""
    try:
        data = signing.loads(token, salt=TOKEN_SALT, max_age=TOKEN_MAX_AGE)
        return data["u"], data["c"]
    except (signing.BadSignature, KeyError, TypeError):
        return None


def _token_from(request):
    return (request.GET.get(TOKEN_FIELD) or request.POST.get(TOKEN_FIELD)
            or request.headers.get("X-Launch-Token") or "")


def resolve_membership(request, course_id):
    """The Membership of the requesting person in course_id, from the session or a launch token."""
    token = _token_from(request)
    user_id = None
    if token:
        found = read_launch_token(token)
        if found and found[1] == int(course_id):
            user_id = found[0]
    elif request.user.is_authenticated:
        user_id = request.user.pk
    if user_id is None:
        return None
    membership = (Membership.objects.select_related("course", "user")
                  .filter(course_id=course_id, user_id=user_id).first())
    if membership and token:
        # the token names who acts in this request (without reading the session: no queries for it)
        request.user = membership.user
    return membership


SAFE_METHODS = ("GET", "HEAD", "OPTIONS", "TRACE")


def carries_launch_token(request):
    """Whether a form post or fetch carries the page's launch token (our CSRF defence inside iframes).

    Cookies, and with them Django's CSRF cookie, may be missing in Moodle's iframe; a third-party site
    cannot know the launch token, so an unsafe request that carries it was made by our own page.
    """
    return bool(request.POST.get(TOKEN_FIELD) or request.headers.get("X-Launch-Token"))


def forbidden(request, message, reason=""):
    """A clear page for a person who may not see this (and a WARNING log line with the reason)."""
    log.warning("courses.access: refused %s: %s", request.path, reason or message)
    return HttpResponseForbidden(render_to_string("error.html", {"message": message}, request=request))


def _admit(request, course_id, teaching):
    """The refusal for this request (a response), or None after setting request.course/.membership/.launch_token."""
    if request.method not in SAFE_METHODS and not carries_launch_token(request):
        return forbidden(request, _("This page has expired. Please reload it and try again."),
                         f"{request.method} without the launch token")
    membership = resolve_membership(request, course_id)
    if membership is None:
        return forbidden(request, _("Please open this tool from your course in the learning platform."),
                         "no membership in this course for this session or launch token")
    if teaching and not membership.is_teaching:
        return forbidden(request, _("Only the course's teachers may open this page."),
                         f"role {membership.role} may not open a teaching page")
    request.course = membership.course
    request.membership = membership
    request.launch_token = make_launch_token(membership.user_id, membership.course_id)
    return None


def course_member(teaching=False):
    """View decorator: requires a membership in the URL's course; sets request.course/.membership/.launch_token.

    With teaching=True only instructors, teaching assistants and administrators pass. Unsafe methods
    must carry the launch token (see carries_launch_token), which replaces Django's CSRF cookie here.
    An async view gets an async wrapper: the membership is read on the shared database thread pool.
    """

    def decorator(view):
        if iscoroutinefunction(view):
            @csrf_exempt
            @functools.wraps(view)
            async def async_wrapper(request, course_id, *args, **kwargs):
                refused = await db_in_thread(lambda: _admit(request, course_id, teaching))
                if refused is not None:
                    return refused
                return await view(request, course_id, *args, **kwargs)

            async_wrapper.course_access = {"teaching": teaching}
            return async_wrapper

        @csrf_exempt
        @functools.wraps(view)
        def wrapper(request, course_id, *args, **kwargs):
            refused = _admit(request, course_id, teaching)
            if refused is not None:
                return refused
            return view(request, course_id, *args, **kwargs)

        wrapper.course_access = {"teaching": teaching}  # kept by functools.wraps of outer decorators
        return wrapper

    return decorator


# --- The API: who a request is (authentication classes) and what it may do in a course (course_grant) ---------

READ, TEACH, WRITE = "read", "teach", "write"
LEVELS = (READ, TEACH, WRITE)  # each includes the ones before it
LAST_USE_PRECISION = timedelta(minutes=1)  # a token's last use is written at most this often


@dataclass(frozen=True)
class LaunchAccess:
    """``request.auth`` of an API request made with a page's launch token: the membership it names, and the token."""

    membership: Membership
    token: str


@dataclass(frozen=True)
class CourseGrant:
    """What an API request may do in one course: READ (any member: the course, search, chat), TEACH (also read
    what its teachers see: texts, settings, question sets, usage) or WRITE (also change them)."""

    course: Course
    user: object
    level: str

    def allows(self, needed):
        """Whether this grant reaches the needed level."""
        return LEVELS.index(self.level) >= LEVELS.index(needed)


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer <API token>``: a course's or an admin's token (courses.models.ApiToken), usable only
    while neither revoked nor expired; its last use is recorded (at most once a minute)."""

    def authenticate(self, request):
        scheme, _sep, secret = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        secret = secret.strip()
        token = (ApiToken.objects.select_related("user", "course").filter(digest=ApiToken.digest_of(secret))
                 .annotate(teaches=models.Exists(Membership.objects.teaching().filter(
                     course_id=models.OuterRef("course_id"), user_id=models.OuterRef("user_id"))))
                 .first() if secret else None)  # with course_grant's membership check: one query
        if token is None or not token.user.is_active or (token.course_id is None and not token.user.is_staff):
            log.warning("courses.access: refused API token %s…", secret[:10])
            raise exceptions.AuthenticationFailed(_("This API token is not valid."))
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed(_("This API token was revoked."))
        now = timezone.now()
        if token.expires_at <= now:
            raise exceptions.AuthenticationFailed(_("This API token has expired."))
        if token.last_used_at is None or now - token.last_used_at > LAST_USE_PRECISION:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class LaunchTokenAuthentication(authentication.BaseAuthentication):
    """A page's own API calls: its launch token in the header ``X-Launch-Token`` (or ``?lt=`` on a safe method;
    an unsafe one must carry the header, which another site cannot set: the CSRF defence of carries_launch_token)."""

    def authenticate(self, request):
        token = request.headers.get("X-Launch-Token") or (
            request.query_params.get(TOKEN_FIELD, "") if request.method in SAFE_METHODS else "")
        if not token:
            return None
        found = read_launch_token(token)
        membership = found and (Membership.objects.select_related("course", "user")
                                .filter(user_id=found[0], course_id=found[1]).first())
        if not membership:
            log.warning("courses.access: refused API call with %s launch token", "an outdated" if found else "a bad")
            raise exceptions.AuthenticationFailed(_("This page has expired. Please reload it and try again."))
        return membership.user, LaunchAccess(membership, token)


def course_grant(user, auth, course_id):
    """The CourseGrant of an API request (its user and auth, from the classes above or the session) in the course,
    or None when it may not see the course at all.

    An admin's token: every course (or the one it names). A course's token: its course, while its user still teaches
    there (read from the token's own query, see ApiTokenAuthentication); a read token reads what teachers see, a
    write token also changes it. A launch token: its own course. The session: the person's memberships. A member's
    role decides: teachers write, others read.
    """
    course_id = int(course_id)
    if isinstance(auth, ApiToken):
        level = WRITE if auth.can_write else TEACH
        if auth.course_id is None:
            course = Course.objects.filter(pk=course_id).first()
            return course and CourseGrant(course, user, level)
        if auth.course_id != course_id:
            return None
        teaches = auth.teaches if hasattr(auth, "teaches") else (
            Membership.objects.teaching().filter(course_id=course_id, user_id=auth.user_id).exists())
        return CourseGrant(auth.course, user, level) if teaches or auth.user.is_staff else None
    if isinstance(auth, LaunchAccess):
        membership = auth.membership if auth.membership.course_id == course_id else None
    elif user is not None and user.is_authenticated:
        membership = Membership.objects.select_related("course").filter(course_id=course_id, user_id=user.pk).first()
    else:
        membership = None
    return membership and CourseGrant(membership.course, user, WRITE if membership.is_teaching else READ)


def visible_courses(user, auth):
    """The courses an API request may see (the list of /api/v1/courses/)."""
    if isinstance(auth, ApiToken):
        if auth.course_id is None:
            return Course.objects.all()
        if auth.user.is_staff:
            return Course.objects.filter(pk=auth.course_id)
        return Course.objects.filter(pk=auth.course_id, memberships__user_id=auth.user_id,
                                     memberships__role__in=Membership.TEACHING_ROLES)
    if isinstance(auth, LaunchAccess):
        return Course.objects.filter(pk=auth.membership.course_id)
    if user is not None and user.is_authenticated:
        return Course.objects.filter(memberships__user_id=user.pk)
    return Course.objects.none()


def page_token(request):
    """The launch token an API request came with ('' for API tokens and sessions): links in its answers carry it,
    so a page that asked can open them."""
    auth = getattr(request, "auth", None)
    return auth.token if isinstance(auth, LaunchAccess) else ""


class CourseAccess(permissions.BasePermission):
    """The API's permission: an authenticated request whose grant in the URL's course (``course_id``) reaches the
    view's level (``read_level`` for safe methods, READ by default; ``write_level`` for others, WRITE by default).
    Sets ``request.grant``. A course the request may not see is 404, not 403: course ids are not disclosed."""

    def has_permission(self, request, view):
        if not (request.user and request.user.is_authenticated):
            return False  # DRF answers 401 with the Bearer challenge
        course_id = view.kwargs.get("course_id")
        if course_id is None:
            return True
        grant = course_grant(request.user, request.auth, course_id)
        if grant is None:
            raise exceptions.NotFound(_("This course does not exist, or you are not a member of it."))
        safe = request.method in SAFE_METHODS
        needed = getattr(view, "read_level", READ) if safe else getattr(view, "write_level", WRITE)
        if not grant.allows(needed):
            log.warning("courses.access: refused %s %s: level %s, needs %s", request.method, request.path,
                        grant.level, needed)
            if grant.level == TEACH:
                raise exceptions.PermissionDenied(_("This API token may only read."))
            raise exceptions.PermissionDenied(_("Only the course's teachers may open this page."))
        request.grant = grant
        return True
