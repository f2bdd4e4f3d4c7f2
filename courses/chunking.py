"""Sections to chunks: passages of about CHUNK_TOKENS tokens that never cross a section boundary.

Paragraphs are packed greedily; a paragraph too long is split at sentences (then words). Each chunk
after the first in a section repeats the tail of the previous one (up to CHUNK_OVERLAP tokens).
"""

import re
from dataclasses import dataclass

from django.conf import settings

_SENTENCE = re.compile(r"(?<=[.!?:;])\s+(?=[\"„”'(\[A-ZÄÖÜ0-9•–-])")


@dataclass
class ChunkDraft:
    """A chunk before it is embedded: its section's index, ordinal in the document, text, page, tokens."""

    section_index: int
    ordinal: int
    text: str
    page: int | None
    token_count: int


def _units(paragraphs, count_tokens, limit):
    """(page, text, tokens) units no longer than limit tokens, in reading order."""
    for page, text in paragraphs:
        tokens = count_tokens(text)
        if tokens <= limit:
            yield page, text, tokens
            continue
        pieces = _SENTENCE.split(text)
        if len(pieces) == 1:
            words = text.split(" ")
            step = max(1, int(len(words) * limit / tokens))
            pieces = [" ".join(words[i:i + step]) for i in range(0, len(words), step)]
        for piece in pieces:
            piece_tokens = count_tokens(piece)
            if piece_tokens > limit and piece != text:
                yield from _units([(page, piece)], count_tokens, limit)
            else:
                yield page, piece, piece_tokens


def _draft(section_index, ordinal, units):
    text = "\n".join(t for _, t, _ in units)
    page = next((p for p, _, _ in units if p is not None), None)
    return ChunkDraft(section_index, ordinal, text, page, sum(n for _, _, n in units))


def chunk_sections(sections, count_tokens, *, size=None, overlap=None):
    """Chunk drafts for parsed sections; size and overlap are in tokens of the embedding model."""
    size = size or settings.CHUNK_TOKENS
    overlap = settings.CHUNK_OVERLAP if overlap is None else overlap
    drafts = []
    for section_index, section in enumerate(sections):
        current = []  # (page, text, tokens)
        fresh = False  # whether current holds anything beyond the carried-over overlap


        for unit in _units(section.paragraphs, count_tokens, size):
            if current and fresh and sum(n for _, _, n in current) + unit[2] > size:
                drafts.append(_draft(section_index, len(drafts), current))
                carried, total = [], 0
                for item in reversed(current):
                    if total + item[2] > overlap:
                        break
                    carried.insert(0, item)
                    total += item[2]
                current, fresh = carried, False
            current.append(unit)
            fresh = True
        if current and fresh:
            drafts.append(_draft(section_index, len(drafts), current))
    return drafts
