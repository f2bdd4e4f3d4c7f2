"""The sentences of the course texts that answer a question, chosen by the tool and quoted verbatim before the
model says anything.

``split_sentences`` cuts a passage into units: the sentences of its paragraphs (German and English; an
abbreviation such as "z. B.", "bzw.", "d. h." or "Nr." does not end one), each line of a code block or command
and each list item. ``choose_quotes`` scores every unit of the retrieved passages against the question by
embedding similarity (the course's embedding model, sentences batched and kept in a small cache) plus the
rarity-weighted share of the question's words it holds (courses.retrieval.word_coverage: German stems, compound
parts, synonyms), and keeps the best one, its neighbour where the answer runs on, and up to QUOTE_LIMIT in all
that score close to it. Each Quote keeps its text exactly as it stands in the passage, the passage and its
character offsets there (the reader view highlights it).
"""

import collections
import logging
import re
import threading
from dataclasses import dataclass

import numpy as np

from courses.embeddings import EmbeddingError, get_embedder
from courses.retrieval import word_coverage

log = logging.getLogger(__name__)

QUOTE_LIMIT = 3
MIN_WORDS = 3  # shorter units (a table cell, a label) are quoted only as a neighbour
# Scoring (fitted with bench/bench_quotes.py on tests/data/debian_reference_de_qa.jsonl and
# *_paraphrased.jsonl; see the numbers there): similarity to the question, minus the best unit's, plus the
# weighted share of the question's words the unit holds, plus a little for the passage's rank.
SIMILARITY_WEIGHT = 1.0
COVERAGE_WEIGHT = 0.1
RANK_WEIGHT = 0.01
NEIGHBOUR_GAP = 0.05  # a neighbour of the best unit scoring this close to it is quoted with it
OTHER_GAP = 0.03  # another unit scoring this close to the best one is quoted as well
SHORT_WORDS = 8  # a best unit this short (or ending in ":") is quoted with the unit after it

# --- Sentences ---------------------------------------------------------------------------------------

ABBREVIATIONS = (
    "z. B.|z. T.|d. h.|u. a.|u. Ä.|o. Ä.|u. U.|i. d. R.|s. o.|s. u.|v. a.|a. a. O.|m. E.|i. A.|bzw.|bspw.|usw.|"
    "etc.|Nr.|Nrn.|ca.|vgl.|S.|Abs.|Art.|Kap.|Abb.|Tab.|Dr.|Prof.|Hr.|Fr.|ggf.|evtl.|inkl.|exkl.|max.|min.|sog.|"
    "vs.|allg.|bzgl.|einschl.|mind.|zzgl.|Std.|Min.|Sek.|Mio.|Mrd.|Jh.|Tel.|Str.|Bd.|Hrsg.|ebd.|e.g.|i.e.|cf.|"
    "approx.|Fig.|No.|Vol.|Mr.|Mrs.|Ms.|St.|resp."
).split("|")
_ABBREVIATION = re.compile(
    r"(?<![\w.])(?:" + "|".join(sorted(
        (r"\.\s?".join(re.escape(part.strip()) for part in a.rstrip(".").split(".")) + r"\." for a in ABBREVIATIONS),
        key=len, reverse=True)) + r")", re.IGNORECASE)
_INITIAL = re.compile(r"(?<![\w.])[A-ZÄÖÜ]\.")  # "J. Smith", "Abschnitt A."
_BOUNDARY = re.compile(r"[.!?…]+[\"“”'’»)\]]*\s+(?=[\"„“'‚«(\[]?[A-ZÄÖÜ0-9])")
_LIST_ITEM = re.compile(r"^\s*(?:[-*•–]|\d{1,3}[.)]|[a-z][.)])\s+")
_CODE_LINE = re.compile(r"^(?:\s{2,}|\t|\$ |# |> |[a-z0-9_./-]+(?: -{1,2}[\w-]+)+\b)")


def _protected(line):
    """Spans of a line that hold an abbreviation or an initial, whose period ends no sentence."""
    return [m.span() for m in _ABBREVIATION.finditer(line)] + [m.span() for m in _INITIAL.finditer(line)]


def _looks_like_code(line):
    """Whether a line is a command or code rather than prose: indented, a prompt, or few letters in words."""
    stripped = line.strip()
    if _CODE_LINE.match(line) or stripped.startswith(("```", "$ ", "# ")):
        return True
    words = re.findall(r"[^\W\d_]{2,}", stripped)
    symbols = sum(1 for c in stripped if c in "{}[]()<>=;|&$/\\_*#")
    return bool(stripped) and (not words or symbols > max(3, len(stripped) // 6))


def split_sentences(text):
    """The units of a passage as (start, end) offsets into it: each sentence of a prose line (paragraphs are
    lines in a chunk), each list item's sentences, each code or command line whole. Offsets cut no whitespace
    into a unit; text[start:end] is the unit verbatim."""
    units = []
    position = 0
    for line in text.split("\n"):
        line_start, position = position, position + len(line) + 1
        if not line.strip():
            continue
        if _looks_like_code(line):
            units.append(_trimmed(text, line_start, line_start + len(line)))
            continue
        protected = _protected(line)
        item = _LIST_ITEM.match(line)
        begin = item.end() if item else 0  # a list's "-" or "1." is no part of its sentences
        for match in _BOUNDARY.finditer(line, begin):
            stop = match.end()
            period = match.start()
            if any(a <= period < b for a, b in protected):
                continue
            end = match.end() - (len(match.group(0)) - len(match.group(0).rstrip()))
            units.append(_trimmed(text, line_start + begin, line_start + end))
            begin = stop
        units.append(_trimmed(text, line_start + begin, line_start + len(line)))
    return [(a, b) for a, b in units if b > a]


def _trimmed(text, start, end):
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


# --- Scoring -------------------------------------------------------------------------------------------

@dataclass
class Quote:
    """A unit of a retrieved passage quoted as (part of) an answer: its text verbatim, the passage it stands in
    (number among the answer's sources, chunk id, document, section, page) and its offsets in that passage."""

    text: str
    number: int
    chunk: int
    start: int
    end: int
    score: float
    title: str = ""
    section: str = ""
    page: int | None = None

    def as_dict(self):
        """The quote as stored with the message and sent to the page."""
        return {"text": self.text, "number": self.number, "chunk": self.chunk, "start": self.start,
                "end": self.end, "title": self.title, "section": self.section, "page": self.page}


@dataclass
class Unit:
    """A candidate: one unit of one passage with its features."""

    passage: int  # index in the passages
    position: int  # index among its passage's units
    start: int
    end: int
    text: str
    similarity: float = 0.0
    coverage: float = 0.0
    score: float = 0.0

    @property
    def words(self):
        """How many words it has."""
        return len(re.findall(r"\w+", self.text))


_CACHE_SIZE = 20000
_cache = collections.OrderedDict()
_cache_lock = threading.Lock()


def embed_units(model, texts):
    """Unit vectors of texts as passages of the embedding model, batched; texts seen before (passages come back
    for many questions) are taken from a cache of this process."""
    vectors, missing = {}, []
    with _cache_lock:
        for text in texts:
            found = _cache.get((model, text))
            if found is None:
                missing.append(text)
            else:
                _cache.move_to_end((model, text))
                vectors[text] = found
    missing = list(dict.fromkeys(missing))
    if missing:
        fresh = get_embedder(model).embed_passages(missing)
        with _cache_lock:
            for text, vector in zip(missing, fresh, strict=True):
                vectors[text] = _cache[(model, text)] = vector
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    return np.vstack([vectors[t] for t in texts]) if texts else np.zeros((0, 1), dtype=np.float32)


def candidates(passages):
    """The units of the passages, in order, each text once (overlapping chunks repeat sentences)."""
    units, seen = [], set()
    for index, passage in enumerate(passages):
        for position, (start, end) in enumerate(split_sentences(passage.text)):
            text = passage.text[start:end]
            key = re.sub(r"\s+", " ", text).casefold()
            if key in seen:
                continue
            seen.add(key)
            units.append(Unit(index, position, start, end, text))
    return units


def score_units(course_id, question, passages, units):
    """Fill in each unit's similarity to the question, its coverage of the question's words and its score."""
    if not units:
        return units
    texts = [u.text for u in units]
    model = next((p.embedding_model for p in passages if p.embedding_model), None)
    try:
        if model is None:
            raise EmbeddingError("no embedding model")
        vectors = embed_units(model, texts)
        query = get_embedder(model).embed_query(question)
        similarities = vectors @ np.asarray(query, dtype=np.float32)
    except EmbeddingError as exc:  # the words alone decide
        log.warning("quotes without embeddings: %s", exc)
        similarities = np.zeros(len(units), dtype=np.float32)
    coverages = word_coverage(course_id, question, texts)
    best = float(similarities.max())
    for unit, similarity, coverage in zip(units, similarities, coverages, strict=True):
        unit.similarity, unit.coverage = float(similarity), float(coverage)
        unit.score = (SIMILARITY_WEIGHT * (unit.similarity - best) + COVERAGE_WEIGHT * unit.coverage
                      + RANK_WEIGHT / (1 + unit.passage))
    return units


def select(units, limit=QUOTE_LIMIT):
    """The units to quote, best first: the best one (with the unit after it when it is short or ends in ":",
    or a neighbour scoring close to it), then others that score close to the best, up to limit in all."""
    eligible = [u for u in units if u.words >= MIN_WORDS]
    if not eligible:
        return []
    ranked = sorted(eligible, key=lambda u: -u.score)
    best = ranked[0]
    by_place = {(u.passage, u.position): u for u in units}
    chosen = [[best]]
    after = by_place.get((best.passage, best.position + 1))
    before = by_place.get((best.passage, best.position - 1))
    if after and (best.words < SHORT_WORDS or best.text.rstrip().endswith(":")):
        chosen[0].append(after)
    else:
        near = max((n for n in (before, after) if n and n.words >= 2), key=lambda n: n.score, default=None)
        if near and near.score >= best.score - NEIGHBOUR_GAP:
            chosen[0] = sorted([best, near], key=lambda u: u.position)
    taken = {(u.passage, u.position) for u in chosen[0]}
    for unit in ranked[1:]:
        if sum(len(group) for group in chosen) >= limit or unit.score < best.score - OTHER_GAP:
            break
        if (unit.passage, unit.position) in taken:
            continue
        chosen.append([unit])
        taken.add((unit.passage, unit.position))
    return chosen


def choose_quotes(course_id, question, passages, limit=QUOTE_LIMIT):
    """The Quotes that answer the question from the retrieved passages (numbered from 1 in their order), best
    first; neighbouring units of one passage are one quote."""
    units = score_units(course_id, question, passages, candidates(passages))
    quotes = []
    for group in select(units, limit):
        passage = passages[group[0].passage]
        start, end = group[0].start, group[-1].end
        quotes.append(Quote(text=passage.text[start:end], number=group[0].passage + 1, chunk=passage.chunk_id,
                            start=start, end=end, score=round(max(u.score for u in group), 4),
                            title=passage.document_title, page=passage.page,
                            section="" if passage.section_path.strip() == passage.document_title.strip()
                            else passage.section_path))
    return quotes


def quotes_text(quotes):
    """The quotes as plain text, one a paragraph (for the conversation's history and for checking answers)."""
    return "\n\n".join(q["text"] if isinstance(q, dict) else q.text for q in quotes or ())
