"""{% tool_url 'name' arg… %}: reverse a URL and carry the launch token, for cookie-less iframes."""

from urllib.parse import urlencode

from django import template
from django.urls import reverse

register = template.Library()


@register.simple_tag(takes_context=True)
def tool_url(context, name, *args, **kwargs):
    """The URL of a named view with ?lt=<launch token> when the page has one."""
    url = reverse(name, args=args, kwargs=kwargs or None)
    token = getattr(context.get("request"), "launch_token", None)
    if token:
        url += ("&" if "?" in url else "?") + urlencode({"lt": token})
    return url
