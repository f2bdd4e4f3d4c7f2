"""Course texts to structured plain text: sections (chapter/heading paths) holding paragraphs with pages.

``parse_file(path, kind)`` reads PDF (PyMuPDF: keeps word spaces, expands ligatures; we join
hyphenated line ends, drop running headers/footers, page numbers and table-of-contents leaders and
take chapter paths from the PDF outline), HTML (h1–h6), DOCX (heading styles), Markdown and plain text.
"""

import logging
import re
from collections import Counter
from dataclasses import dataclass, field

from courses.language import detect_language

log = logging.getLogger(__name__)

PATH_SEPARATOR = " › "


class ParseError(Exception):
    """The file cannot be read as the kind it claims to be; code names the reason for the person."""

    def __init__(self, code, detail=""):
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


@dataclass
class ParsedSection:
    """One section: its heading path and its paragraphs as (page or None, text)."""

    title: str
    path: list
    level: int
    paragraphs: list = field(default_factory=list)

    @property
    def path_text(self):
        """The heading path as one line, e.g. "3 Die Systeminitialisierung › 3.2 Systemd-Init"."""
        return PATH_SEPARATOR.join(self.path)

    @property
    def pages(self):
        """Pages this section's text lies on (empty for formats without pages)."""
        return [page for page, _ in self.paragraphs if page is not None]


@dataclass
class ParsedDocument:
    """A parsed file: its sections in reading order, page count and detected language."""

    sections: list
    pages_total: int = 0
    language: str = "en"
    title: str = ""

    @property
    def text(self):
        """All text, paragraphs separated by blank lines (for language detection and tests)."""
        return "\n\n".join(text for section in self.sections for _, text in section.paragraphs)


# --- Text clean-up ---------------------------------------------------------------------------------

_LEADER = re.compile(r"(?:\s?\.){4,}")
_SPACES = re.compile(r"[ \t\u00a0\u2009\u202f]+")


def join_lines(lines):
    """Reflow the lines of one paragraph: undo end-of-line hyphenation, keep real hyphens in compounds."""
    out = ""
    for raw in lines:
        line = _SPACES.sub(" ", raw).strip()
        if not line:
            continue
        if not out:
            out = line
        elif out.endswith("-") and len(out) > 1 and out[-2].isalpha():
            if out[-2].islower() and line[0].islower():
                out = out[:-1] + line  # "instal-" + "liert" → "installiert"
            else:
                out = out + line  # "Unstable-" + "Veröffentlichung" keeps its hyphen
        else:
            out = out + " " + line
    return out


def _clean(text):
    return _SPACES.sub(" ", text).strip()


# --- PDF -------------------------------------------------------------------------------------------

def _page_furniture(doc, margin=0.08):
    """Texts of blocks in the top/bottom margins that repeat across pages (running headers, footers)."""
    counts = Counter()
    for page in doc:
        height = page.rect.height
        for _x0, y0, _x1, y1, text, *_ in page.get_text("blocks"):
            if y1 < height * margin or y0 > height * (1 - margin):
                counts[_furniture_key(text)] += 1
    threshold = max(3, doc.page_count // 5)
    return {key for key, n in counts.items() if n >= threshold}


def _furniture_key(text):
    return re.sub(r"\d+|\b[ivxlcdm]+\b", "#", _clean(text).lower())


def _is_page_number(text):
    return bool(re.fullmatch(r"(?:seite|page|s\.)?\s*[\divxlcdm]+(?:\s*/\s*\d+)?", _clean(text).lower()))


def _outline(doc):
    """PDF outline entries as (page index, y from top, level, numbered title), in reading order."""
    entries = []
    for entry in doc.get_toc(simple=False):
        level, title, page = entry[0], _clean(entry[1]), entry[2]
        dest = entry[3] if len(entry) > 3 else {}
        if page < 1:
            continue
        page_index = page - 1
        rect = doc[page_index].rect
        point = dest.get("to")
        y = rect.height - point.y if point is not None else 0.0
        match = re.match(r"(?:chapter|section|subsection|subsubsection|appendix|part)\.([\w.]+)$",
                         dest.get("nameddest", "") or "")
        number = re.sub(r"^[a-z]\.", "", match.group(1)) if match else ""  # "a.A.2" (appendix) → "A.2"
        entries.append((page_index, max(0.0, y - 2), level, f"{number} {title}".strip()))
    entries.sort(key=lambda e: (e[0], e[1]))
    return entries


def parse_pdf(path, progress=None):
    """A PDF's text by outline sections, with pages; raises ParseError for broken or locked files."""
    import pymupdf

    try:
        doc = pymupdf.open(path, filetype="pdf")
    except Exception as exc:  # PyMuPDF raises several types for damaged files
        raise ParseError("broken_pdf", str(exc)) from exc
    if doc.needs_pass:
        raise ParseError("encrypted_pdf")
    if doc.page_count == 0:
        raise ParseError("empty", "no pages")
    try:
        title = _clean((doc.metadata or {}).get("title") or "")
        furniture = _page_furniture(doc)
        outline = _outline(doc)
        first = ParsedSection(title=title or "–", path=[title or "–"], level=0)
        sections = [first]
        stack = []  # (level, title)
        next_entry = 0
        flags = pymupdf.TEXT_MEDIABOX_CLIP  # ligatures are expanded unless TEXT_PRESERVE_LIGATURES is set
        for page_index, page in enumerate(doc):
            height = page.rect.height
            for block in page.get_text("dict", flags=flags)["blocks"]:
                if block.get("type") != 0:
                    continue
                x0, y0, x1, y1 = block["bbox"]
                while next_entry < len(outline) and (outline[next_entry][0], outline[next_entry][1]) <= (page_index, y0 + 1):
                    _, _, level, heading = outline[next_entry]
                    stack = [item for item in stack if item[0] < level] + [(level, heading)]
                    sections.append(ParsedSection(title=heading, path=[t for _, t in stack], level=level))
                    next_entry += 1
                lines = ["".join(span["text"] for span in line["spans"]) for line in block["lines"]]
                raw = "\n".join(lines)
                in_margin = y1 < height * 0.08 or y0 > height * 0.92
                if in_margin and (_furniture_key(raw) in furniture or _is_page_number(raw)):
                    continue
                if _LEADER.search(raw):
                    continue  # table of contents, list of tables
                text = join_lines(lines)
                if text:
                    sections[-1].paragraphs.append((page_index + 1, text))
            if progress and (page_index % 10 == 9 or page_index == doc.page_count - 1):
                progress(page_index + 1, doc.page_count)
        pages_total = doc.page_count
    except ParseError:
        raise
    except Exception as exc:
        raise ParseError("broken_pdf", str(exc)) from exc
    finally:
        doc.close()
    return ParsedDocument(sections=_drop_empty_headings(sections), pages_total=pages_total, title=title)


def _drop_empty_headings(sections):
    """Sections with text; the heading line itself (repeated in the body) stays as the first paragraph."""
    return [s for s in sections if s.paragraphs]


# --- HTML, DOCX, Markdown, text --------------------------------------------------------------------

_BLOCK_TAGS = ["p", "pre", "li", "td", "th", "dt", "dd", "caption", "blockquote", "figcaption"]
_HEADINGS = ["h1", "h2", "h3", "h4", "h5", "h6"]


class _Builder:
    """Collects paragraphs under the current heading path."""

    def __init__(self, title):
        self.stack = []
        self.sections = [ParsedSection(title=title, path=[title], level=0)]

    def heading(self, level, text):
        self.stack = [item for item in self.stack if item[0] < level] + [(level, text)]
        self.sections.append(ParsedSection(title=text, path=[t for _, t in self.stack], level=level))

    def paragraph(self, text, page=None):
        text = _clean(text)
        if text:
            self.sections[-1].paragraphs.append((page, text))

    def result(self):
        return [s for s in self.sections if s.paragraphs]


def parse_html(data, title=""):
    """HTML by its h1–h6 headings; navigation, scripts and styles are dropped."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(data, "html.parser")
    for junk in soup.select("script, style, nav, noscript, .navheader, .navfooter, div.toc, div.list-of-tables"):
        junk.decompose()
    doc_title = title or (_clean(soup.title.get_text()) if soup.title else "") or "–"
    builder = _Builder(doc_title)
    root = soup.body or soup
    wanted = set(_BLOCK_TAGS) | set(_HEADINGS)
    for element in root.find_all(list(wanted)):
        if element.find_parent(list(wanted)):
            continue  # taken with its parent
        if element.name in _HEADINGS:
            heading = _clean(element.get_text(" "))
            heading = re.sub(r"^(?:Kapitel|Chapter|Anhang|Appendix)\s+([\w.]+)\.?\s+", r"\1 ", heading)
            heading = re.sub(r"^(\d+(?:\.\d+)*)\.\s", r"\1 ", heading)
            builder.heading(int(element.name[1]), heading)
        elif element.name == "pre":
            builder.paragraph(element.get_text())
        else:
            builder.paragraph(join_lines(element.get_text().splitlines()))
    return ParsedDocument(sections=builder.result(), title=doc_title)


def parse_docx(path, title=""):
    """Word documents by heading styles ("Heading 1", "Überschrift 1", "Title"); tables row by row."""
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(path)
    except (PackageNotFoundError, KeyError, ValueError, OSError) as exc:
        raise ParseError("broken_docx", str(exc)) from exc
    except Exception as exc:  # zipfile.BadZipFile and lxml errors
        raise ParseError("broken_docx", str(exc)) from exc
    builder = _Builder(title or _clean(document.core_properties.title or "") or "–")
    body = document.element.body
    for child in body.iterchildren():
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "p":
            paragraph = docx.text.paragraph.Paragraph(child, document)
            style = (paragraph.style.name if paragraph.style is not None else "") or ""
            match = re.match(r"(?:Heading|Überschrift)\s*(\d)", style)
            if match and paragraph.text.strip():
                builder.heading(int(match.group(1)), _clean(paragraph.text))
            else:
                builder.paragraph(paragraph.text)
        elif tag == "tbl":
            table = docx.table.Table(child, document)
            for row in table.rows:
                builder.paragraph(" | ".join(_clean(cell.text) for cell in row.cells))
    return ParsedDocument(sections=builder.result(), title=builder.sections[0].title)


def parse_markdown(text, title=""):
    """Markdown by its # headings; paragraphs are blank-line separated."""
    builder = _Builder(title or "–")
    paragraph, in_code = [], False

    def flush():
        if paragraph:
            builder.paragraph(join_lines(paragraph) if not in_code else "\n".join(paragraph))
            paragraph.clear()

    for line in text.splitlines():
        if line.strip().startswith("```"):
            flush()
            in_code = not in_code
            continue
        match = None if in_code else re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if match:
            flush()
            builder.heading(len(match.group(1)), _clean(match.group(2)))
        elif not line.strip() and not in_code:
            flush()
        else:
            paragraph.append(line)
    flush()
    return ParsedDocument(sections=builder.result(), title=builder.sections[0].title)


def parse_text(text, title=""):
    """Plain text: blank-line separated paragraphs in one section."""
    builder = _Builder(title or "–")
    for block in re.split(r"\n\s*\n", text):
        builder.paragraph(join_lines(block.splitlines()))
    return ParsedDocument(sections=builder.result(), title=builder.sections[0].title)


def _decode(data):
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ParseError("encoding")


def parse_file(path, kind, *, title="", progress=None):
    """Parse a stored course file of the given kind ("pdf", "docx", "html", "md", "txt")."""
    if kind == "pdf":
        parsed = parse_pdf(path, progress=progress)
    elif kind == "docx":
        parsed = parse_docx(path, title=title)
    else:
        with open(path, "rb") as handle:
            data = handle.read()
        if kind == "html":
            parsed = parse_html(_decode(data), title=title)
        elif kind == "md":
            parsed = parse_markdown(_decode(data), title=title)
        elif kind == "txt":
            parsed = parse_text(_decode(data), title=title)
        else:
            raise ParseError("unsupported", kind)
    if not parsed.sections:
        raise ParseError("empty")
    parsed.language = detect_language(parsed.text)
    return parsed
