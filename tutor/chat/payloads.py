"""What the chat page shows of a message: sanitized HTML, numbered sources, state and error text.

A payload names its sources by number and chunk id only (``payload``): the chat worker publishes it like that,
since it knows no reader. The web side adds the passage URLs
(``with_urls``): each source's URL, and the HTML's citation links ``[n]``, written as ``#source-n`` until then.
"""

import html
import re

from config.errors import CHAT, error_message
from courses.access import tool_url
from courses.rendering import render_markdown
from tutor.chat.models import Message

SOURCE_HREF = "#source-{}"
_SOURCE_LINK = re.compile(r'href="#source-(\d{1,2})"')


def error_text(code):
    """The person-readable, translated text for an answer's error code."""
    return error_message(CHAT, code)


def payload(message, citations):
    """The payload of a message whose citations are at hand, without URLs (see with_urls)."""
    if message.role == Message.USER:
        rendered = render_markdown(message.text)
    else:
        rendered = render_markdown(message.text, {c.number: SOURCE_HREF.format(c.number) for c in citations})
    failed = message.status == Message.FAILED
    return {
        "id": message.pk, "role": message.role, "status": message.status, "html": rendered,
        "declined": message.declined,
        # with the quote check: whether a quote of the answer was found in its source (None: not checked)
        "grounded": (message.evidence or {}).get("grounded"),
        "error": error_text(message.error) if failed else "", "error_code": message.error if failed else "",
        "citations": [{"number": c.number, "chunk": c.chunk_id, "title": c.document_title,
                       # a document without headings has one section named like the document: said once
                       "section": "" if c.section_path.strip() == c.document_title.strip() else c.section_path,
                       "page": c.page, "cited": c.cited, "quote": c.quote} for c in citations],
    }


def with_urls(found, course_id):
    """The payload with each source's passage URL, in its list and links."""
    urls = {c["number"]: tool_url("courses:passage", course_id, c["chunk"])
            for c in found["citations"]}

    def link(match):
        url = urls.get(int(match.group(1)))
        return f'href="{html.escape(url)}"' if url else match.group(0)

    return dict(found, html=_SOURCE_LINK.sub(link, found["html"]),
                citations=[dict(c, url=urls[c["number"]]) for c in found["citations"]])


def message_payload(message):
    """What the page shows of a stored message (its citations read from the database), with passage URLs."""
    citations = list(message.citations.all()) if message.role == Message.ASSISTANT else []
    return with_urls(payload(message, citations), message.conversation.course_id)
