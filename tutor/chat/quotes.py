"""The sentences of the course texts that answer a question, chosen by the tool and quoted verbatim before the
model says anything.

``split_sentences`` cuts a passage into units: the sentences of its paragraphs (German and English; an
abbreviation such as "z. B.", "bzw.", "d. h." or "Nr." does not end one), each line of a code block or command
and each list item. ``choose_quotes`` scores every unit of the retrieved passages against the question by
embedding similarity (the course's embedding model, sentences batched and kept in a small cache) plus the
rarity-weighted share of the question's words it holds (courses.retrieval.word_coverage: German stems, compound
parts, synonyms; only the EMBEDDED_UNITS units holding most of them are embedded). A unit is read under its
section's headings: the question's words that the heading path holds count for each of its units at HEADING_WEIGHT
(a sentence under "Zugriff auf Partitionen über die UUID-Kennung" need not repeat "Partition"). It quotes the best
unit with the unit after it (and the one before where that introduces it), then the runner-up with the unit after
it (QUOTE_LIMIT quotes), and, when the next unit scores nearly as well as the runner-up (within CLOSE_MARGIN: the
scores cannot tell them apart), that unit as a third (with what its ":" announces). A table's description cell
comes with the name cells of its row, and a quoted caption of a table with the row that adds most of the question's
words. Each Quote keeps its text exactly as it stands in the passage, the passage and its character offsets there
(the reader view highlights it).
"""

import collections
import itertools
import logging
import re
import threading
from dataclasses import dataclass

import numpy as np

from courses.embeddings import EmbeddingError, get_embedder
from courses.retrieval import word_coverage

log = logging.getLogger(__name__)

QUOTE_LIMIT = 2  # quotes: the best unit in its context, and the runner-up with the unit after it
MIN_WORDS = 3  # shorter units (a table cell, a label) are quoted only beside a longer one
EMBEDDED_UNITS = 16  # units embedded per question: those holding most of the question's words (latency on 2 cores)
# Scoring, fitted with bench/bench_quotes.py on tests/data/debian_reference_de_qa.jsonl and
# debian_reference_de_paraphrased.jsonl (e5-small, 4 passages; the held-out set only reported): the quotes hold an
# expected string for 0.76 of the 70 questions (retrieval's ceiling 0.90); similarity alone 0.73, the best unit
# alone 0.44. Score: similarity to the question, plus the weighted share of the question's words the unit holds,
# plus a little for its passage's rank.
SIMILARITY_WEIGHT = 1.0
COVERAGE_WEIGHT = 0.3
RANK_WEIGHT = 0.05
# Chosen on the sets below (7 Dec, branch quotes3; the held-out and fresh2 sets were read while choosing, so they are
# no longer blind): the heading path's share of the question's words at 0.2 (0.1-0.3 alike), a third quote within
# 0.03 of the runner-up, the unit before the best one only where it leads to it. bench/bench_answers.py --no-llm:
# the quotes hold the answer for qa 0.76 -> 0.77, paraphrased held-out 0.14 -> 0.23, fresh2 0.50 -> 0.62 (its
# retrieval ceiling at 4 passages); answers as long as before on average (~570 characters).
# What a quoted ":" announces (up to ANNOUNCED_UNITS, branch colon; with quotes4's rule that a command line takes
# the prose that explains it): qa 0.77 -> 0.81, fresh3 0.60 -> 0.67 (fresh3 read while choosing), the unanswerable
# sets unchanged. A group followed by an introduction and the command line it introduces takes both (branch
# quotes5, a scratch loop over the quotes alone): fresh3 21 -> 23 of 30; qa, fresh2, quantity, paraphrased unchanged;
# ~5 characters more per answer. Tried and not kept: a bonus for units naming a command when the question asks for
# one ("womit", "Befehl", "Werkzeug"): 0.02-0.05 changed nothing, 0.1 won one of fresh3 and lost one of qa.
# A sentence that says it introduces what follows ("Folgender Befehl …", "wie folgt") counts as one ending with ":"
# (branch quotes6, after the blind fresh4-6 runs): fresh6 21 -> 22 of 30, every other set unchanged.
# A table that a PDF ran into one line is cut into its rows (_rows), a table's cell takes the cell before it
# (_cell), and 16 units are embedded instead of 8 (branch answers8, the scratch loop over the quotes alone, fresh4-7
# no longer blind): fresh4-7 85 -> 88 of 115 (the /etc/securetty and arp rows, help2man's cells), qa 57 -> 56 (its
# expected string is the description of the row beside the answer), answers ~20 characters shorter. Quoting from 6
# passages instead of 4 was +1 of 115 in the whole pipeline: not taken.
# A question's separable verb counts where the text splits it (courses.retrieval._separated: "hinzufügen",
# "Fügen Sie … hinzu"): fresh4-7 88 -> 89, every other set unchanged.
# Every quoted description cell takes its row's name cells (not only the best unit's), and a quoted table caption
# brings the row of its table that adds most of the question's words to the quote (branch answers9, the scratch loop
# over the quotes alone, fresh8/9 no longer blind): fresh4-9 132 -> 135 of 175 (lpadmin, "systemd-analyze blame",
# puTTY), no set lost one; answers as long as before on average. A path the question names counts as one word,
# as written (courses.retrieval.word_coverage): 135 -> 136 ("/bin/sh"); a close third that ends with ":" brings what
# it announces, as the other quotes do: 136 -> 137 ("hwclock --utc --systohc"). After the blind fresh10/11 (now in
# the loop): the best unit's row too, and a package row's name across its popularity and size cells: fresh10-13
# 101 -> 102 of 120 (dialout), fresh4-9 unchanged.
HEADING_WEIGHT = 0.2
CLOSE_MARGIN = 0.03
ANNOUNCED_UNITS = 2  # units quoted after a group that ends with ":" (what it announces: a command, a table's first row)
SHORT_UNIT_WORDS = 6  # a best unit shorter than this is quoted with the unit before it (a table row's cells)
_HEADING = re.compile(r"^\d+(?:\.\d+)+\.?\s+\S")  # "9.6.11 SMART verwenden": a heading in a PDF's text

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
        units.extend(_rows(text, *_trimmed(text, line_start + begin, line_start + len(line))))
    return [(a, b) for a, b in units if b > a]


# Where a row of a table starts inside a line that a PDF ran together: a path or man page ("/etc/securetty
# Einschränkung …", "arp(8) ip neigh …") or a package with its popularity ("help2man V:0, I:8 …"), after a word.
_ROW_HEAD = re.compile(r"(?:^|(?<=[\w)”\"] ))(?:/[\w.-]+(?:/[\w.-]+)+|[\w.+-]+\(\d\w?\)|[\w.+-]+ (?:V:\d+, )?I:\d+) ")
_JOINING = {"und", "oder", "sowie", "über", "mit", "von", "für", "in", "im", "als", "wie", "siehe", "sie", "der", "die",
            "das", "den", "dem", "des", "ein", "eine", "einen", "and", "or", "with", "of", "for", "as", "see", "the"}
MIN_ROWS = 2  # row heads a line needs to be read as a table's rows
ROW_WORDS = 3  # and the words each of its rows needs


def _rows(text, start, end):
    """A prose line's last unit, cut into a table's rows where it is one (no sentence's end, at least MIN_ROWS row
    heads, none after a joining word as in "mount(8) und fstab(5)"): a row is a unit of its own, so one row can
    answer without the eight others around it."""
    unit = text[start:end]
    if re.search(r"[.!?:;]$", unit):
        return [(start, end)]
    heads = [m.start() for m in _ROW_HEAD.finditer(unit)
             if not m.start() or unit[:m.start()].split()[-1].strip("(\"„“”,").casefold() not in _JOINING]
    if len(heads) + (heads[:1] != [0]) < MIN_ROWS:
        return [(start, end)]
    cuts = sorted({0, *heads, len(unit)})
    rows = [_trimmed(text, start + a, start + b) for a, b in itertools.pairwise(cuts)]
    if any(len(re.findall(r"\w+", text[a:b])) < ROW_WORDS for a, b in rows):
        return [(start, end)]
    return rows


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
    lead_end: int | None = None  # where what the quote's ":" announces begins (None: it announces nothing)
    close: bool = False  # the third quote, added only because it scored close to the runner-up: no evidence

    @property
    def lead(self):
        """The quote without what its ":" announces (a table's rows, a command line): the evidence for a figure or
        a default must come from the sentences chosen, not from a table's Popcon counts quoted after them."""
        return self.text if self.lead_end is None else self.text[:self.lead_end - self.start].rstrip()

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
    context: float = 0.0  # the share of the question's words its section's heading path holds
    announced: bool = False  # quoted only because the unit before it ends with ":"
    close: bool = False  # quoted third only because it scored close to the runner-up

    @property
    def words(self):
        """How many words it has."""
        return len(re.findall(r"\w+", self.text))

    @property
    def held(self):
        """The question's words it holds, read under its headings: its own coverage plus a part of theirs."""
        return self.coverage + HEADING_WEIGHT * self.context


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
    headings = [p.section_path for p in passages]
    shares = word_coverage(course_id, question, [u.text for u in units] + headings)  # one query for both
    for unit, coverage in zip(units, shares[:len(units)], strict=True):
        unit.coverage = float(coverage)
        unit.context = float(shares[len(units) + unit.passage])
    # only the units holding most of the question's words are embedded (each costs ~20 ms of e5 on 2 cores)
    shortlist = sorted(eligible(units), key=lambda u: (-u.held, u.passage, u.position))[:EMBEDDED_UNITS]
    model = next((p.embedding_model for p in passages if p.embedding_model), None)
    try:
        if model is None:
            raise EmbeddingError("no embedding model")
        vectors = embed_units(model, [u.text for u in shortlist])
        query = get_embedder(model).embed_query(question)
        similarities = [float(s) for s in vectors @ np.asarray(query, dtype=np.float32)] if shortlist else []
    except EmbeddingError as exc:  # the words alone decide
        log.warning("quotes without embeddings: %s", exc)
        similarities = [0.0] * len(shortlist)
    best = max(similarities, default=0.0)
    for unit, similarity in zip(shortlist, similarities, strict=True):
        unit.similarity = similarity
        unit.score = unit_score(unit, best)
    for unit in units:
        if unit not in shortlist:
            unit.score = float("-inf")  # not a candidate for the best units; still quoted as a neighbour
    return units


def unit_score(unit, best):
    """A shortlisted unit's score: its similarity to the question against the best unit's, the question's words it
    holds under its headings, and a little for its passage's rank."""
    return (SIMILARITY_WEIGHT * (unit.similarity - best) + COVERAGE_WEIGHT * unit.held
            + RANK_WEIGHT / (1 + unit.passage))


def eligible(units):
    """The units that may be quoted for their own sake: not headings, not too short."""
    return [u for u in units if u.words >= MIN_WORDS and not _HEADING.match(u.text)]


def _leads_to(previous, unit):
    """Whether the unit before the best one belongs to it: it introduces it (ends with ":"), it is a command line
    the sentence speaks of, or the best unit is too short to stand alone (a table's description cell after its
    command cell, "cd -" before "in das vorherige Verzeichnis wechseln")."""
    if previous is None:
        return False
    return (previous.text.rstrip().endswith(":") or _looks_like_code(previous.text)
            or unit.words < SHORT_UNIT_WORDS or _cell(unit) and _cell(previous))


CELL_WORDS = 10  # a unit this short without a sentence's end is a table's cell ("help2man V:0, I:8 542 text → manpage")


def _cell(unit):
    """Whether a unit reads as a table's cell: short, and it ends no sentence."""
    return unit.words < CELL_WORDS and not re.search(r"[.!?:;,]$", unit.text.rstrip())


_ANNOUNCING = re.compile(r"(?i)\b(?:(?:der |die |das )?folgende[rns]? (?:Befehl|Kommando|Beispiel)|wie folgt|"
                         r"the following (?:command|example)|as follows)\b")


def _announces(text):
    """Whether a unit introduces what follows it: it ends with ":" or says so ("Folgender Befehl liest eine Webseite
    in eine Textdatei ein.", "… wie folgt beheben")."""
    return text.rstrip().endswith(":") or bool(_ANNOUNCING.search(text))


def _announced(group, by_place, taken):
    """The units that a unit of the group announces with its closing ":" ("Sie können ihn wie folgt ändern:", "Es
    gibt mehrere Werkzeuge …:") and the group does not hold yet: ANNOUNCED_UNITS after it in its passage in all (a
    command line, a table's header and first row), ending at a command line, which is what such a sentence
    introduces."""
    colons = [i for i, u in enumerate(group) if _announces(u.text)]
    if not colons or any(_looks_like_code(u.text) for u in group[colons[-1] + 1:]):
        return _explained(group, by_place, taken)
    last, following = group[-1], []
    for step in range(1, ANNOUNCED_UNITS - (len(group) - 1 - colons[-1]) + 1):
        place = (last.passage, last.position + step)
        if place not in by_place or place in taken:
            break
        by_place[place].announced = True
        following.append(by_place[place])
        if _looks_like_code(by_place[place].text):
            break
    return following


def _explained(group, by_place, taken):
    """The prose sentence after a group that ends with a command line ("$ watch w", then "Hiermit wird alle 2
    Sekunden neu angezeigt, wer angemeldet ist."): what the example does, which the group alone does not say. Not
    after another command line or a heading (branch quotes4)."""
    last = group[-1] if group else None
    place = (last.passage, last.position + 1) if last else None
    if last is None or place not in by_place or place in taken:
        return []
    if not _looks_like_code(last.text):
        return _procedure(last, by_place, taken)
    following = by_place[place]
    if _looks_like_code(following.text) or _HEADING.match(following.text):
        return []
    return [following]


def _procedure(last, by_place, taken):
    """The command a group's prose leads to: the unit after the group ends with ":" and the one after that is a
    command line ("Konfigurieren Sie dann alle unvollständig installierten Pakete mittels:", "$ sudo dpkg
    --configure -a"): both, the sentences before it say what the command is for."""
    places = [(last.passage, last.position + 1), (last.passage, last.position + 2)]
    if any(place not in by_place or place in taken for place in places):
        return []
    intro, command = (by_place[place] for place in places)
    if not _announces(intro.text) or not _looks_like_code(command.text):
        return []
    command.announced = True
    return [intro, command]


NAME_WORDS = 3  # a table's cell this short beside a quoted description cell is the row's name ("lpadmin")
_CAPTION = re.compile(r"^(?:Tabelle|Table) \d+(?:\.\d+)*([.:])")  # "Tabelle 1.8." (HTML), "Tabelle 6.10:" (PDF)
TABLE_UNITS = 40  # units a table's rows are looked for in, beside its caption


def _name_cell(unit):
    """Whether a unit reads as the name cell of a table's row: a command, package or group, a few words at most."""
    return unit is not None and unit.words <= NAME_WORDS and not re.search(r"[.!?:;,]$", unit.text.rstrip())


def _row_mates(unit, by_place, taken, after=True):
    """The name cells beside a quoted description cell, which the description alone does not name ("lpadmin" before
    "Befehle ausführen, um Drucker … hinzuzufügen", '"systemd-analyze blame"' after "Alle Units auflisten, sortiert
    nach der Dauer ihrer Initialisierung"): the cells of its row, whichever side a table puts its names."""
    if not _cell(unit) and re.search(r"[.!?:;]$", unit.text.rstrip()):
        return [], []
    sides = []
    for step in (-1, 1) if after else (-1,):
        cells = []
        place = (unit.passage, unit.position + step)
        while step < 0 and place in by_place and place not in taken and len(cells) < 2 and _FIGURE_CELL.match(
                by_place[place].text):  # a package table's popularity and size cells stand between
            cells.insert(0, by_place[place])
            place = (place[0], place[1] - 1)
        neighbour = by_place.get(place)
        sides.append([neighbour, *cells] if place not in taken and _name_cell(neighbour) else [])
    return sides[0], (sides[1] if after else [])


_FIGURE_CELL = re.compile(r"^(?:V:\d+, I:\d+|I:\d+|\d+)$")  # "V:0, I:2", "38": a package's popularity, its size


def _table_rows(caption, by_place):
    """The units of a quoted caption's table in its passage: after an HTML caption ("Tabelle 1.8. Liste …"), before a
    PDF's ("… Tabelle 6.10: Liste …", which follows its table), up to a sentence of prose or another caption."""
    step = 1 if _CAPTION.match(caption.text).group(1) == "." else -1
    rows, position = [], caption.position + step * (2 if step == 1 else 1)  # an HTML caption's title is a unit
    while len(rows) < TABLE_UNITS and (caption.passage, position) in by_place:
        unit = by_place[(caption.passage, position)]
        if _CAPTION.match(unit.text) or _HEADING.match(unit.text) or (
                re.search(r"[.!?:]$", unit.text.rstrip()) and unit.words >= CELL_WORDS):
            break
        rows.append(unit)
        position += step
    return rows


def _table_row(group, by_place, taken, held):
    """For a group quoting a table's caption (the question names what the table lists), the row of that table that
    adds most of the question's words to those the group holds (held: the share of them that texts hold), with its
    row's name cells: the caption alone answers nothing, and a header cell repeats the caption's words."""
    caption = next((u for u in group if _CAPTION.match(u.text)), None)
    if caption is None or held is None:
        return []
    rows = [u for u in _table_rows(caption, by_place) if (u.passage, u.position) not in taken]
    if not rows:
        return []
    quoted = " ".join(u.text for u in group)
    shares = held([f"{quoted} {u.text}" for u in rows] + [quoted])
    gains = [share - shares[-1] for share in shares[:-1]]
    top = max(gains)
    if top <= 0 or sum(gain == top for gain in gains) > 1:
        return []
    best = rows[gains.index(top)]
    before, after = _row_mates(best, by_place, taken)
    return before + [best] + after


def select(units, limit=QUOTE_LIMIT, margin=CLOSE_MARGIN, held=None):
    """The units to quote as groups of neighbours, best first: the best unit with the unit after it (an answer often
    follows the sentence that names the question's words, or introduces a command with ":") and the unit before it
    where that leads to it (_leads_to), then the next best unit not taken yet with the unit after it, up to limit
    groups; then the next best unit alone when it scores within margin of the last group's (the scores cannot tell
    them apart, and one short sentence more costs the reader less than a missed answer)."""
    ranked = sorted((u for u in eligible(units) if u.score > float("-inf")), key=lambda u: -u.score)
    by_place = {(u.passage, u.position): u for u in units}
    chosen, taken, primary = [], set(), []
    for unit in ranked:
        if len(primary) >= limit:
            break
        if (unit.passage, unit.position) in taken:
            continue
        previous = by_place.get((unit.passage, unit.position - 1))
        mates = _row_mates(unit, by_place, taken, after=False)[0]
        before = 1 if not chosen and _leads_to(previous, unit) else len(mates)
        group = [by_place[(unit.passage, unit.position + d)] for d in range(-before, 2)
                 if (unit.passage, unit.position + d) in by_place
                 and (unit.passage, unit.position + d) not in taken]
        group += _announced(group, by_place, taken)
        chosen.append(group)
        primary.append(group)
        taken.update((u.passage, u.position) for u in group)
        row = _table_row(group, by_place, taken, held)
        if row:
            chosen.append(row)
            taken.update((u.passage, u.position) for u in row)
    if len(primary) == limit and margin > 0:
        last = max(u.score for u in primary[-1])
        close = next((u for u in ranked if (u.passage, u.position) not in taken), None)
        if close is not None and close.score >= last - margin:
            close.close = True
            before, after = _row_mates(close, by_place, taken)
            group = before + [close] + after
            chosen.append(group + _announced(group, by_place, taken) if _announces(close.text) else group)
    return chosen


def choose_quotes(course_id, question, passages, limit=QUOTE_LIMIT):
    """The Quotes that answer the question from the retrieved passages (numbered from 1 in their order), best
    first; neighbouring units of one passage are one quote."""
    units = score_units(course_id, question, passages, candidates(passages))
    quotes = []
    for group in select(units, limit, held=lambda texts: word_coverage(course_id, question, texts)):
        passage = passages[group[0].passage]
        start, end = group[0].start, group[-1].end
        lead = [u.end for u in group if not u.announced]
        lead_end = max(lead) if len(lead) < len(group) else None
        quotes.append(Quote(text=passage.text[start:end], number=group[0].passage + 1, chunk=passage.chunk_id,
                            start=start, end=end,
                            score=round(max((u.score for u in group if u.score > float("-inf")), default=0.0), 4),
                            title=passage.document_title, page=passage.page, lead_end=lead_end,
                            close=any(u.close for u in group),
                            section="" if passage.section_path.strip() == passage.document_title.strip()
                            else passage.section_path))
    return quotes


def quotes_text(quotes):
    """The quotes as plain text, one a paragraph (for the conversation's history and for checking answers)."""
    return "\n\n".join(q["text"] if isinstance(q, dict) else q.text for q in quotes or ())
