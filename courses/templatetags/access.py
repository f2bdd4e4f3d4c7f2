"""The course access rule in templates: links, forms and the page's session configuration.

``{% tool_url 'name' arg… %}`` is a link's URL (it carries no credential). Every form of a course page is written
by ``{% course_form 'name' arg… [method="post"] [enctype=…] [id=…] [class=…] [data_confirm=…] %}…{% endcourse_form %}``:
the form element, its action URL and the CSRF token that Django's CsrfViewMiddleware checks (keyword names with
underscores become attributes with hyphens). No form writes the token by hand, so none can forget it.
``{% session_config %}`` (in base.html) hands static/base/base.js what the page's own calls need where the browser
keeps no cookie: the session (never put in a URL by the script), the CSRF token, the ticket and renewal URLs.
"""

from django import template
from django.middleware.csrf import get_token
from django.urls import reverse
from django.utils.html import format_html, format_html_join, json_script

from courses import access

register = template.Library()


@register.simple_tag
def tool_url(name, *args):
    """The URL of a named view of the tool."""
    return access.tool_url(name, *args)


class CourseFormNode(template.Node):
    """A <form> to a named view of the course, with the CSRF token as its hidden field."""

    def __init__(self, name, args, attributes, nodelist):
        self.name, self.args, self.attributes, self.nodelist = name, args, attributes, nodelist

    def render(self, context):
        url = access.tool_url(self.name.resolve(context), *[a.resolve(context) for a in self.args])
        attributes = {"method": "post", **{key.replace("_", "-"): value.resolve(context)
                                           for key, value in self.attributes.items()}, "action": url}
        opening = format_html("<form{}>", format_html_join("", ' {}="{}"', attributes.items()))
        request = context.get("request")
        field = format_html('<input type="hidden" name="csrfmiddlewaretoken" value="{}">',
                            get_token(request)) if request is not None else ""
        return opening + field + self.nodelist.render(context) + "</form>"


@register.tag
def course_form(parser, token):
    """{% course_form 'view-name' arg… key=value… %}…{% endcourse_form %}: a form that carries the CSRF token."""
    bits = token.split_contents()
    if len(bits) < 2:
        raise template.TemplateSyntaxError("course_form needs the name of the view it posts to")
    name, args, attributes = parser.compile_filter(bits[1]), [], {}
    for bit in bits[2:]:
        key, sep, value = bit.partition("=")
        if sep and key.isidentifier():
            attributes[key] = parser.compile_filter(value)
        else:
            args.append(parser.compile_filter(bit))
    nodelist = parser.parse(("endcourse_form",))
    parser.delete_first_token()
    return CourseFormNode(name, args, attributes, nodelist)


@register.simple_tag(takes_context=True)
def session_config(context):
    """The page's session data for static/base/base.js, as a json_script element (id tutor-session)."""
    request = context.get("request")
    if request is None:
        return ""
    session = getattr(request, "session", None)
    signed_in = bool(getattr(request, "user", None) and request.user.is_authenticated and session is not None)
    via = getattr(request, "session_via", "")
    config = {
        # the session for the page's own calls, only where the browser did not bring the cookie
        "session": session.session_key if signed_in and via in access.CARRIED else "",
        "via": via if signed_in else "",
        "csrf": get_token(request) if signed_in else "",  # none for visitors: it would open a session for each
        "header": access.SESSION_HEADER, "field": access.SESSION_FIELD, "ticket_field": access.TICKET_FIELD,
        "ticket_url": reverse("courses:session-ticket"), "renew_url": reverse("courses:session-renew"),
        "expires": session.get_expiry_date().isoformat() if signed_in else "",
        "refused": bool(context.get("access_refused")),
    }
    return json_script(config, "tutor-session")
