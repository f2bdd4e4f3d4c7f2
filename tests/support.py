"""Helpers shared by the tests: reading a page's forms as a browser would submit them."""

from html.parser import HTMLParser


class _Forms(HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append({"action": attrs.get("action", ""), "method": attrs.get("method", "get").lower(),
                               "attrs": attrs, "fields": {}})
        elif tag == "input" and self.forms and attrs.get("type") == "hidden" and attrs.get("name"):
            self.forms[-1]["fields"][attrs["name"]] = attrs.get("value", "")


def page_forms(html):
    """The forms of a page: [{action, method, attrs, fields}], fields holding the hidden inputs' values (what the
    browser sends along with whatever the person fills in)."""
    parser = _Forms()
    parser.feed(html)
    return parser.forms
