"""Parsing course texts with their structure: the real Debian-Referenz PDF and HTML, DOCX, Markdown, text."""

import re
from pathlib import Path

import pytest

from courses.parsing import ParseError, join_lines, parse_file

CORPUS = Path(__file__).resolve().parent.parent / "deploy" / "demo_corpus" / "debian-reference-de"


@pytest.fixture(scope="module")
def pdf():
    return parse_file(CORPUS / "debian-reference.de.pdf", "pdf")


@pytest.fixture(scope="module")
def html():
    return parse_file(CORPUS / "ch03.de.html", "html")


def test_pdf_keeps_the_spaces_between_words_like_the_html_version(pdf, html):
    pdf_text = pdf.text
    sentences = [t for s in html.sections for _, t in s.paragraphs if 60 < len(t) < 200 and "\n" not in t]
    assert len(sentences) > 10
    found = [s for s in sentences if s in pdf_text]
    assert len(found) >= len(sentences) * 0.5, "the PDF's sentences should read as in the HTML"
    assert "Als Systemadministrator sollten Sie grob wissen, wie das Debian-System gestartet und konfiguriert wird." in pdf_text
    words = re.findall(r"[A-Za-zÄÖÜäöüß]+", pdf_text)
    glued = [w for w in words if len(w) > 40]
    assert len(glued) < len(words) / 10000


def test_pdf_sections_follow_the_outline_with_numbers_and_pages(pdf):
    paths = {s.path_text: s for s in pdf.sections}
    section = paths["3 Die Systeminitialisierung › 3.4 Die Systemmeldungen"]
    assert section.pages and min(section.pages) >= 100
    assert any("journalctl" in text for _, text in section.paragraphs)
    assert pdf.pages_total == 276
    assert pdf.language == "de"


def test_pdf_drops_running_headers_page_numbers_and_joins_hyphenated_lines(pdf):
    paragraphs = [t for s in pdf.sections for _, t in s.paragraphs]
    assert not any(re.fullmatch(r"Debian-Referenz \d+ / \d+", t) for t in paragraphs)
    assert "über die Abhängigkeiten installiert" in pdf.text  # "instal-" / "liert" across lines
    assert "Unstable-Veröffentlichung" in pdf.text  # a real hyphen in a compound stays
    assert ". . . . ." not in pdf.text  # table of contents leaders


def test_join_lines_undoes_hyphenation_only_inside_words():
    assert join_lines(["Die Pakete werden instal-", "liert."]) == "Die Pakete werden installiert."
    assert join_lines(["das Debian-", "System"]) == "das Debian-System"
    assert join_lines(["zwei", "Zeilen"]) == "zwei Zeilen"


def test_html_sections_come_from_headings(html):
    paths = [s.path_text for s in html.sections]
    assert "3 Die Systeminitialisierung › 3.1 Ein Überblick über den Bootstrap-Prozess › 3.1.1 Stufe 1: das UEFI" in paths
    assert html.language == "de"
    assert all(page is None for s in html.sections for page, _ in s.paragraphs)


def test_markdown_and_text(tmp_path):
    md = tmp_path / "notes.md"
    md.write_text("# Einführung\n\nDas ist der erste Absatz\nmit zwei Zeilen.\n\n## Teil A\n\nText in A.\n", encoding="utf-8")
    parsed = parse_file(md, "md")
    assert [s.path_text for s in parsed.sections] == ["Einführung", "Einführung › Teil A"]
    assert parsed.sections[0].paragraphs == [(None, "Das ist der erste Absatz mit zwei Zeilen.")]
    txt = tmp_path / "plain.txt"
    txt.write_text("The first paragraph is here.\n\nAnd the second one is there.", encoding="utf-8")
    assert len(parse_file(txt, "txt").sections[0].paragraphs) == 2


def test_docx_headings(tmp_path):
    import docx

    document = docx.Document()
    document.add_heading("Kapitel Eins", level=1)
    document.add_paragraph("Der erste Absatz des Kapitels ist nicht besonders lang.")
    document.add_heading("Abschnitt 1.1", level=2)
    document.add_paragraph("Hier steht der Text des Abschnitts.")
    path = tmp_path / "skript.docx"
    document.save(path)
    parsed = parse_file(path, "docx", title="Skript")
    assert [s.path_text for s in parsed.sections] == ["Kapitel Eins", "Kapitel Eins › Abschnitt 1.1"]


def test_broken_files_raise_a_parse_error_with_a_reason(tmp_path):
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4\n" + b"\x00garbage" * 100)
    with pytest.raises(ParseError) as caught:
        parse_file(broken, "pdf")
    assert caught.value.code in {"broken_pdf", "empty"}
    bad_docx = tmp_path / "bad.docx"
    bad_docx.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ParseError) as caught:
        parse_file(bad_docx, "docx")
    assert caught.value.code == "broken_docx"
