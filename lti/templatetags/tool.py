"""{% tool_url 'name' arg… %}: reverse a URL and carry the launch token, for cookie-less iframes."""

from django import template

from lti import access

register = template.Library()


@register.simple_tag(takes_context=True)
def tool_url(context, name, *args):
    """The URL of a named view with ?lt=<launch token> when the page has one."""
    return access.tool_url(name, *args, token=getattr(context.get("request"), "launch_token", None))
