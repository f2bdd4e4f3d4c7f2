"""The course access rule in templates: links and forms that carry the page's launch token.

``{% tool_url 'name' arg… %}`` is a link's URL with ``?lt=<token>``. Every form of a course page is written
by ``{% course_form 'name' arg… [method="post"] [enctype=…] [id=…] [class=…] [data_confirm=…] %}…{% endcourse_form %}``:
the form element, its action URL and the hidden ``lt`` field that unsafe requests must carry (keyword names
with underscores become attributes with hyphens). No form writes the token by hand, so none can forget it.
"""

from django import template
from django.utils.html import format_html, format_html_join

from courses import access

register = template.Library()


def _token(context):
    return getattr(context.get("request"), "launch_token", None)


@register.simple_tag(takes_context=True)
def tool_url(context, name, *args):
    """The URL of a named view with ?lt=<launch token> when the page has one."""
    return access.tool_url(name, *args, token=_token(context))


class CourseFormNode(template.Node):
    """A <form> to a named view of the course, with the launch token as its hidden ``lt`` field."""

    def __init__(self, name, args, attributes, nodelist):
        self.name, self.args, self.attributes, self.nodelist = name, args, attributes, nodelist

    def render(self, context):
        token = _token(context)
        url = access.tool_url(self.name.resolve(context), *[a.resolve(context) for a in self.args], token=token)
        attributes = {"method": "post", **{key.replace("_", "-"): value.resolve(context)
                                           for key, value in self.attributes.items()}, "action": url}
        opening = format_html("<form{}>", format_html_join("", ' {}="{}"', attributes.items()))
        field = format_html('<input type="hidden" name="{}" value="{}">', access.TOKEN_FIELD, token or "")
        return opening + field + self.nodelist.render(context) + "</form>"


@register.tag
def course_form(parser, token):
    """{% course_form 'view-name' arg… key=value… %}…{% endcourse_form %}: a form that carries the launch token."""
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
