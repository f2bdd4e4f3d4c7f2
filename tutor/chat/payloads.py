"""What the chat page shows of a message: sanitized HTML, numbered sources, state and error text.

A payload names its sources by number and chunk id only (``payload``): the chat worker publishes it like that,
since it knows no reader. The web side adds the passage URLs
(``with_urls``): each source's URL, and the HTML's citation links ``[n]``, written as ``#source-n`` until then.
"""

import html
import re

from config.errors import CHAT, error_message
from courses.access import tool_url
from courses.rendering import HIGHLIGHT_FIELD, render_markdown
from tutor.chat.models import Message
from tutor.inference.prompts import without_delimiters

SOURCE_HREF = "#source-{}"
_SOURCE_LINK = re.compile(r'href="#source-(\d{1,2})"')
# HTML element names a small model writes into its Markdown (SmolLM2 ended every answer with "</pre>"); raw HTML is
# escaped by render_markdown, so such a tag would show as text
_HTML_NAMES = ("a|abbr|b|big|blockquote|body|br|center|code|dd|div|dl|dt|em|font|h[1-6]|head|hr|html|i|kbd|li|ol|p|"
               "pre|s|samp|small|span|strike|strong|sub|sup|table|tbody|td|tfoot|th|thead|tr|tt|u|ul|var")
_STRAY_TAG = re.compile(rf"</?(?:{_HTML_NAMES})\s*/?>", re.IGNORECASE)
_CODE = re.compile(r"(```.*?(?:```|\Z)|`[^`\n]*`)", re.DOTALL)  # fenced blocks and code spans: kept as written
_PARTIAL_TAG = re.compile(r"</?[A-Za-z]{0,12}\Z")  # a tag still being written at the end of a stream


def without_stray_tags(text, *, streaming=False):
    """A model's Markdown without the HTML tags it wrote outside code (bare <p>, </pre>, <br/>: never meant as text
    for the reader); streaming: the text so far made whole (no tag still being written at its end, a code block still
    open closed, a "**" whose closing has not come yet left out), so that no syntax shows while it streams."""
    parts = _CODE.split(text or "")
    prose = [_STRAY_TAG.sub("", part) for part in parts[::2]]
    if streaming:
        prose[-1] = _PARTIAL_TAG.sub("", prose[-1])
        if sum(part.count("**") for part in prose) % 2:
            prose[-1] = "".join(prose[-1].rsplit("**", 1)) if "**" in prose[-1] else prose[-1]
    parts[::2] = prose
    cleaned = "".join(parts)
    last_code = parts[-2] if len(parts) > 1 and not parts[-1] else ""
    if streaming and last_code.startswith("```") and (len(last_code) < 6 or not last_code.endswith("```")):
        cleaned += "\n```"
    return cleaned


def answer_html(text, citation_urls=None, *, streaming=False):
    """An answer's sanitized HTML, the same while it streams (the text so far) as when it is finished: the prompt's
    echoed delimiter tags and stray HTML tags dropped, then render_markdown."""
    return render_markdown(without_stray_tags(without_delimiters(text or ""), streaming=streaming), citation_urls)


def error_text(code):
    """The person-readable, translated text for an answer's error code."""
    return error_message(CHAT, code)


def payload(message, citations):
    """The payload of a message whose citations are at hand, without URLs (see with_urls)."""
    if message.role == Message.USER:
        rendered = render_markdown(message.text)
    else:
        rendered = answer_html(message.text, {c.number: SOURCE_HREF.format(c.number) for c in citations})
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
        # the tool's quotes from the course texts, which open the answer (tutor.chat.quotes)
        "quotes": list(message.quotes or []) if message.role == Message.ASSISTANT else [],
    }


def quote_urls(quotes, course_id):
    """The quotes, each with the URL of its passage in the reader view, the quoted sentence highlighted."""
    with_url = []
    for quote in quotes:
        url = tool_url("courses:passage", course_id, quote["chunk"])
        url += ("&" if "?" in url else "?") + f"{HIGHLIGHT_FIELD}={int(quote['start'])}-{int(quote['end'])}"
        with_url.append(dict(quote, url=url + "#quote"))
    return with_url


def with_urls(found, course_id):
    """The payload with each source's passage URL, in its list and links."""
    urls = {c["number"]: tool_url("courses:passage", course_id, c["chunk"])
            for c in found["citations"]}

    def link(match):
        url = urls.get(int(match.group(1)))
        return f'href="{html.escape(url)}"' if url else match.group(0)

    return dict(found, html=_SOURCE_LINK.sub(link, found["html"]),
                citations=[dict(c, url=urls[c["number"]]) for c in found["citations"]],
                quotes=quote_urls(found.get("quotes") or [], course_id))


def message_payload(message):
    """What the page shows of a stored message (its citations read from the database), with passage URLs."""
    citations = list(message.citations.all()) if message.role == Message.ASSISTANT else []
    return with_urls(payload(message, citations), message.conversation.course_id)
