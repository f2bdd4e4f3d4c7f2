"""Who may see a course page: the course's access rule, the only membership check of every view.

After a launch the person is signed in with a session (courses.sessions: a fixed lifetime, revocable by the admin).
Moodle shows the tool in an iframe, where the browser keeps the session's cookie only as a partitioned cookie
(CHIPS), or not at all. So no URL carries a reusable credential: a URL carries at most a *ticket* (``?ticket=``),
redeemed once within seconds for the session it names (the first page after a launch, a link followed where the
cookie is missing); the pages' own calls send the session in the header ``X-Tutor-Session`` (kept by the page's
script, never in a URL); a form posted from such a page carries it in the body (``tutor_session``).
config.middleware.SessionMiddleware reads the session from the cookie, the header, the form or a ticket.
Cross-site requests are refused by Django's CsrfViewMiddleware (CSRF_USE_SESSIONS: the token lives in the session,
so it works without cookies); forms carry the token (``{% course_form %}``), the pages' scripts send it in
``X-CSRFToken``.

Views use the decorator ``course_member`` (sync and async views alike), Python code builds links with ``tool_url``,
and templates use the tags of ``courses/templatetags/access.py`` (``{% tool_url %}`` for links, ``{% course_form %}``
for forms, ``{% session_config %}`` for the page's script).

The API (``/api/v1/``, Django REST framework) follows the same rule through the authentication classes and the
permission below: an API token (``Authorization: Bearer …``, courses.models.ApiToken) or the session (cookie or
header, with the CSRF token on unsafe methods); ``course_grant`` decides what each may do in a course, on the same
memberships as the pages.
"""

import functools
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpResponseForbidden
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework import authentication, exceptions, permissions

from config.api import TokenRateThrottle, bearer_secret
from config.threads import db_in_thread
from courses.models import ApiToken, Course, Membership

log = logging.getLogger(__name__)

TICKET_FIELD = "ticket"  # the only credential a URL may carry: single use, short-lived
SESSION_HEADER = "X-Tutor-Session"  # the pages' own calls, where the browser keeps no cookie in the frame
SESSION_FIELD = "tutor_session"  # the same, in the body of a form posted from such a page
CARRIED = ("ticket", "header", "form")  # how a session came without its cookie (request.session_via)


def _ticket_key(ticket):
    return f"access:ticket:{ticket}"


def issue_ticket(session_key):
    """A single-use ticket for a URL, naming this session for SESSION_TICKET_SECONDS (then worthless)."""
    ticket = secrets.token_urlsafe(24)
    cache.set(_ticket_key(ticket), session_key, settings.SESSION_TICKET_SECONDS)
    return ticket


def redeem_ticket(ticket):
    """The session key a ticket names, once: a second redemption, or one after its time, gets None."""
    if not ticket or len(ticket) > 64:
        return None
    key = _ticket_key(ticket)
    session_key = cache.get(key)
    if session_key is None or not cache.delete(key):  # of two redemptions at once only one deletes it
        return None
    return session_key


def with_ticket(url, ticket):
    """The URL with ``?ticket=`` (or ``&ticket=``)."""
    return url + ("&" if "?" in url else "?") + f"{TICKET_FIELD}={ticket}"


def tool_url(name, *args):
    """The URL of a named view of the tool (it carries no credential)."""
    return reverse(name, args=args)


def resolve_membership(request, course_id):
    """The Membership of the signed-in person (the request's session) in course_id, or None."""
    if not request.user.is_authenticated:
        return None
    return (Membership.objects.select_related("course", "user")
            .filter(course_id=course_id, user_id=request.user.pk).first())


SAFE_METHODS = ("GET", "HEAD", "OPTIONS", "TRACE")


def forbidden(request, message, reason=""):
    """A clear page for a person who may not see this (and a WARNING log line with the reason)."""
    log.warning("courses.access: refused %s: %s", request.path, reason or message)
    return HttpResponseForbidden(render_to_string("error.html", {"message": message, "access_refused": True},
                                                  request=request))


def _admit(request, course_id, teaching):
    """The refusal for this request (a response), or None after setting request.course/.membership."""
    membership = resolve_membership(request, course_id)
    if membership is None:
        reason = "no membership in this course for this session" if request.user.is_authenticated else (
            "no session (signed out, expired, revoked, or a spent ticket)")
        return forbidden(request, _("Please open this tool from your course in the learning platform."), reason)
    if teaching and not membership.is_teaching:
        return forbidden(request, _("Only the course's teachers may open this page."),
                         f"role {membership.role} may not open a teaching page")
    request.course = membership.course
    request.membership = membership
    return None


def course_member(teaching=False):
    """View decorator: requires a membership in the URL's course; sets request.course/.membership.

    With teaching=True only instructors, teaching assistants and administrators pass. Unsafe methods are checked
    by Django's CsrfViewMiddleware before the view (no view is exempt). An async view gets an async wrapper: the
    membership is read on the shared database thread pool.
    """

    def decorator(view):
        if iscoroutinefunction(view):
            @functools.wraps(view)
            async def async_wrapper(request, course_id, *args, **kwargs):
                refused = await db_in_thread(lambda: _admit(request, course_id, teaching))
                if refused is not None:
                    return refused
                return await view(request, course_id, *args, **kwargs)

            async_wrapper.course_access = {"teaching": teaching}
            return async_wrapper

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
    while neither revoked nor expired; its last use is recorded (at most once a minute). Read on every request from
    the database (no cache: a revoked token is refused on its very next request), in one query (token_row), while
    Redis counts the request for the rate limit (config.api.TokenRateThrottle.begin: the two round trips overlap)."""

    def authenticate(self, request):
        secret = bearer_secret(request.headers.get("Authorization", ""))
        if secret is None:
            return None
        digest = ApiToken.digest_of(secret) if secret else None
        counting = digest and TokenRateThrottle.begin(request, ApiToken.rate_key_of(digest))  # Redis meanwhile
        try:
            token = token_row(digest) if digest else None
        finally:
            if counting:
                counting()
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


class _TokenQuery:
    """The SQL of token_row, written once from the models' metadata: the token with its user and course, and whether
    the user teaches the token's course (Membership.objects.teaching()). The ORM built the same query anew for every
    request, about 1 ms of Python (select_related and the Exists) before the one round trip."""

    sql = None
    models = None

    @classmethod
    def get(cls):
        """(the SQL, [(model, its field attnames in the SQL's column order)]), built on first use."""
        if cls.sql is None:
            from django.contrib.auth import get_user_model

            quote = connection.ops.quote_name
            tables = [(ApiToken, "t"), (get_user_model(), "u"), (Course, "c")]
            cls.models = [(model, [f.attname for f in model._meta.concrete_fields]) for model, _alias in tables]
            columns = ", ".join(f"{alias}.{quote(f.column)}" for model, alias in tables
                                for f in model._meta.concrete_fields)
            token, user, course, member = (ApiToken._meta, get_user_model()._meta, Course._meta, Membership._meta)
            roles = ", ".join(["%s"] * len(Membership.TEACHING_ROLES))
            cls.sql = (
                f"SELECT {columns}, EXISTS (SELECT 1 FROM {quote(member.db_table)} m"
                f" WHERE m.{quote(member.get_field('course').column)} = t.{quote(token.get_field('course').column)}"
                f" AND m.{quote(member.get_field('user').column)} = t.{quote(token.get_field('user').column)}"
                f" AND m.{quote(member.get_field('role').column)} IN ({roles}))"
                f" FROM {quote(token.db_table)} t"
                f" JOIN {quote(user.db_table)} u ON u.{quote(user.pk.column)} = t.{quote(token.get_field('user').column)}"
                f" LEFT JOIN {quote(course.db_table)} c"
                f" ON c.{quote(course.pk.column)} = t.{quote(token.get_field('course').column)}"
                f" WHERE t.{quote(token.get_field('digest').column)} = %s")
        return cls.sql, cls.models


def token_row(digest):
    """The ApiToken with this digest (its user and course loaded, ``teaches``: whether its user teaches its course),
    or None: one query, whatever its state (the caller refuses a revoked or expired token)."""
    sql, models_ = _TokenQuery.get()
    with connection.cursor() as cursor:
        cursor.execute(sql, [*Membership.TEACHING_ROLES, digest])
        row = cursor.fetchone()
    if row is None:
        return None
    instances, start = [], 0
    for model, names in models_:
        values = row[start:start + len(names)]
        start += len(names)
        instances.append(None if values[0] is None else model.from_db(connection.alias, names, values))
    token, user, course = instances
    token.user, token.course, token.teaches = user, course, row[-1]
    return token


def course_grant(user, auth, course_id):
    """The CourseGrant of an API request (its user and auth, from the classes above or the session) in the course,
    or None when it may not see the course at all.

    An admin's token: every course (or the one it names). A course's token: its course, while its user still teaches
    there (read from the token's own query, see ApiTokenAuthentication); a read token reads what teachers see, a
    write token also changes it. The session: the person's memberships. A member's
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
        teaches = auth.teaches if hasattr(auth, "teaches") else (  # from token_row's query
            Membership.objects.teaching().filter(course_id=course_id, user_id=auth.user_id).exists())
        return CourseGrant(auth.course, user, level) if teaches or auth.user.is_staff else None
    if user is not None and user.is_authenticated:
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
    if user is not None and user.is_authenticated:
        return Course.objects.filter(memberships__user_id=user.pk)
    return Course.objects.none()


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


def register():
    """Let the project's session middleware redeem and issue this rule's tickets (config.middleware.TICKETS;
    called from CoursesConfig.ready())."""
    from config.middleware import register_session_tickets

    register_session_tickets(redeem=redeem_ticket, issue=issue_ticket, attach=with_ticket)
