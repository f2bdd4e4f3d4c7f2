"""Who may see a course page: the course's access rule, the only membership check of every view.

Moodle shows the tool in an iframe, where browsers may drop third-party cookies. Every page a launch
opens therefore also carries a signed, short-lived *launch token* (query parameter ``lt``, form field
``lt`` or header ``X-Launch-Token``) naming the user and the course; views accept either it or the
session the launch opened. Views use the decorator ``course_member`` (sync and async views alike),
Python code builds links with ``tool_url``, and templates use the tags of ``courses/templatetags/access.py``
(``{% tool_url %}`` for links, ``{% course_form %}`` for forms, which writes the token field itself).
"""

import functools
import logging
from urllib.parse import urlencode

from asgiref.sync import iscoroutinefunction
from django.core import signing
from django.http import HttpResponseForbidden
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from config.threads import db_in_thread
from courses.models import Membership

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
