"""Chunking follows the text's structure: sizes in tokens, overlap, never across a section boundary."""

from courses.chunking import chunk_sections
from courses.parsing import ParsedSection


def words(text):
    return len(text.split())


def test_chunks_stay_inside_their_section_and_respect_the_size():
    long_section = ParsedSection("A", ["A"], 1, [(1, f"Satz Nummer {i} steht hier.") for i in range(60)])
    short_section = ParsedSection("B", ["B"], 1, [(3, "Ein kurzer Abschnitt.")])
    drafts = chunk_sections([long_section, short_section], words, size=40, overlap=10)
    assert [d.ordinal for d in drafts] == list(range(len(drafts)))
    assert drafts[-1].section_index == 1 and drafts[-1].text == "Ein kurzer Abschnitt." and drafts[-1].page == 3
    for draft in drafts[:-1]:
        assert draft.section_index == 0
        assert draft.token_count <= 40
    assert len(drafts) > 5


def test_consecutive_chunks_overlap():
    section = ParsedSection("A", ["A"], 1, [(None, f"Absatz {i} hat genau sechs Wörter.") for i in range(20)])
    first, second = chunk_sections([section], words, size=30, overlap=12)[:2]
    assert second.text.splitlines()[:2] == first.text.splitlines()[-2:]  # 12 tokens: two 6-word paragraphs


def test_a_paragraph_longer_than_a_chunk_is_split_at_sentences():
    paragraph = " ".join(f"Dies ist Satz {i} mit einigen Wörtern." for i in range(50))
    drafts = chunk_sections([ParsedSection("A", ["A"], 1, [(7, paragraph)])], words, size=50, overlap=0)
    assert len(drafts) >= 7
    assert all(d.token_count <= 50 and d.page == 7 for d in drafts)
    assert drafts[0].text.startswith("Dies ist Satz 0 mit einigen Wörtern.")
