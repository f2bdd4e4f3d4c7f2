"""Answer spans chosen from the text itself: which sentences of a section make good questions, which span of each is
the answer, and wrong answers of the same kind from the course's own vocabulary.

No tagger with German weights is available offline, so the choice rests on the shape of words and on the course's
own statistics (``Vocabulary``): in how many of its passages a word occurs (rare words are the course's terms), how
it is written in the middle of a sentence (German nouns are capitalised, commands are not), which word stands
before it (a distractor that followed the same article elsewhere fits the gap's grammar), and whether it stands in
code position (``name(1)``, quoted paths, ``--options``).

Kinds of answer span: ``term`` (a noun or compound the course uses and that is rare elsewhere in it), ``name``
(an acronym or a name written in capitals: UEFI, GRUB, FreeDOS), ``command`` (a command, path, option or variable in
code position), ``number`` and ``definition`` (the term a sentence defines: "Der Bootloader ist …").

``answer_candidates(section_text, course, language)`` and ``distractor_candidates(candidate, course, k)`` are the
public API; the pure ``Vocabulary.from_texts`` and the ``vocabulary=`` / ``embed=`` arguments let them run without
a database.
"""

import bisect
import difflib
import math
import re
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from courses.language import STOPWORDS, detect_language
from tutor.questions import morphology

TERM, NAME, COMMAND, NUMBER, DEFINITION = "term", "name", "command", "number", "definition"
KINDS = (TERM, NAME, COMMAND, NUMBER, DEFINITION)
GAP = "_____"

MIN_WORDS, MAX_WORDS = 7, 36
MIN_SCORE = 1.0  # candidates below make poor keys (general words, used once)
MIN_CONTEXT_WORDS = 4  # content words of the sentence besides the answer: what a student decides by
MAX_DF_SHARE = 0.12  # a term in more than this share of the course's passages is common, not a key term
SAME_HEAD_NOUNS = True  # noun distractors only of the key's compound head (see distractor_candidates)
# Debian-System, Betriebssystem, Dateisystem; Rechnername, Kontoname, Benutzername; Systemumgebung,
# Debian-Umgebung: heads too broad to tell their compounds apart (a hand review found second right answers)
_BROAD_HEADS = {"system", "systems", "name", "umgebung"}
COMMON_FACTOR = 2  # a code word in this many times more passages than the key is too general a wrong answer (was
# 2.5: ls(1) [12] beside ssh(1) [5] passed)
CODE_FIRST = 1.0  # commands, paths and options are chosen before nouns: by hand they make far better items

# A word of the text: letters, digits and what code and compounds hold inside ('/', '.', '-', '_', '+', ':', '='),
# optionally a leading '/', '-', '$' or '~' and a man page's section "(1)".
_TOKEN = re.compile(r"(?:~/|[/$]|--?)?[\w][\w./+:=~@-]*(?:\(\d\w{0,3}\))?")
_TRAILING = ".:-=/"
_MANPAGE = re.compile(r"^[\w.+-]+\(\d\w{0,3}\)$")
_NUMBER = re.compile(r"^\d{1,6}(?:[.,]\d{1,3})?$")
_ACRONYM = re.compile(r"^(?=(?:[^a-zäöüß]*[A-ZÄÖÜ]){2})[A-ZÄÖÜ][A-ZÄÖÜ0-9]{1,7}$")
_CAMEL = re.compile(r"^[A-ZÄÖÜ][a-zäöüß]+[A-ZÄÖÜ][\wäöüß]*$")
_NOUN = re.compile(r"^(?:[\wäöüß]+-)*[A-ZÄÖÜ][a-zäöüß]{2,}$")
_EN_WORD = re.compile(r"^[a-z][a-z-]{4,}$")
_CODE_INSIDE = re.compile(r"[_/=]|\.[a-z]|^[a-z0-9][\w.+-]*[0-9][\w.+-]*$")
_QUOTED = re.compile(r"`([^`\s]{1,60})`")  # code spans of Markdown

# Sentence ends: ., ! or ? followed by space and a capital, a digit or a quote; not after an abbreviation.
_ABBREVIATIONS = set("""z.b d.h u.a bzw ca usw vgl nr abb s etc evtl ggf inkl max min mind o.ä sog u.ä z.t bspw
e.g i.e vs ff dr prof st""".split())
_END = re.compile(r"(?<=[.!?])[\"”“)]?\s+(?=[\"„“(]?[A-ZÄÖÜ0-9])")

# Capitalised words that are no terms: the polite "Sie", the callouts and the words of the text's own structure.
_NOT_TERMS = set("""ganze ganzen sie ihr ihre ihrem ihren ihrer ihres ihnen anmerkung tipp warnung achtung hinweis wichtig
abschnitt abschnitte abschnitts kapitel kapitels tabelle tabellen abbildung seite seiten liste listen beispiel
beispiele beispiels fall falle fälle teil teile art weise zeit hilfe folgenden thema frage fragen antwort antworten
möglichkeit möglichkeiten ding dinge punkt punkte schritt schritte grund gründe sache sachen anfang ende ergebnis
bereich rahmen hand zusammenhang zweck ziel regel menge reihe stelle form details informationen information mal
jahr jahre prozent problem probleme art arten sinne weiteren folgende anderen übrigen einzelnen allgemeinen
einfachheit natürlich vergleich einsatz verwendung nutzung umgang unterschied unterschiede überblick einführung
note tip warning example examples section chapter table figure""".split())
_DETERMINERS = set("""der die das den dem des ein eine einen einem einer eines kein keine keinen keinem keiner
keines dieser diese dieses diesen diesem jeder jede jedes jeden jedem sein seine seinen seinem seiner ihr ihre
ihren ihrem ihrer im am zum zur vom beim ins verschiedene verschiedenen mehrere mehreren einige einigen viele vielen
alle allen beide beiden zwei drei vier the a an""".split())
_ARTICLES = set("der die das den dem des ein eine einen einem einer eines im am zum zur vom beim ins".split())
# A sentence that leans on its neighbours (or on a table or listing) is not understandable alone.
_ANAPHORA = set("""dies diese dieser dieses diesem diesen er es damit dazu hier dort dann daher deshalb außerdem
auch aber jedoch trotzdem allerdings somit dabei dafür davon darin darauf also ebenso stattdessen zudem ferner
weiterhin hierbei hierzu ansonsten sonst natürlich jetzt nun so folglich dadurch deswegen sein seine ihr ihre
this these that those it they then there here also however thus""".split())
_POINTING = re.compile(r"^(?:hier|da|dar)(?:durch|mit|bei|für|von|zu|nach|vor|in|an|auf|aus|um|über|unter|gegen|"
                       r"neben|aufhin)$")
# Pronouns inside a sentence that point to something the sentence does not name.
_BACK_REFERENCES = set("""er ihn ihm dies diese dieser dieses diesem diesen derselbe dieselbe dasselbe jene jener
jenes hier dort dafür dazu davon damit daran darauf sein seine seinen seinem seiner seines ihr ihre ihren ihrem
ihrer ihres""".split())
_OBJECT_ES = re.compile(r"\b(?:[Ss]ie|ich|wir|man) es\b|\bes (?:selbst|auch|dann|nun)\b|\b[Dd]as [Gg]leiche\b|"
                        r"\b(?:andererseits|einerseits|solche[nmrs]?)\b|"
                        r"\b(?:[Ff]alls|[Ww]enn|[Oo]b|[Ww]eil|[Dd]a|[Dd]ass) (?:es|er|sie)\b|^Das Ganze\b")
# A likeness to something the sentence does not say ("auf ähnlichem Wege", "ebenso", "likewise", "den entsprechenden
# seriellen Port"): the gap's answer depends on what came before (a blind review found "auf ähnlichem Wege … mit vim(1)
# oder ___" open to ex(1), awk(1)). The adverb "entsprechend" ("entsprechend ”?broken”") is no pointer.
_LIKENESS = re.compile(r"(?i)(?<![\w-])(?:ähnlich\w*|ebenso|genauso|ebenfalls|gleichfalls|gleichermaßen|similar\w*|"
                       r"likewise|in the same way|entsprechende[nmrs]?|corresponding)(?![\w-])")
# An article or adjective whose case does not agree ("auf des gleiche ___"): a slip of the text, no correct German.
# A weak adjective after des/dem/den/eines/einem/einen ends in -en, never in a bare -e.
_CASE_CLASH = re.compile(r"\b(?:des|dem|den|eines|einem|einen)\s+[a-zäöüß]{2,}[a-df-zäöüß]e\s+[\"„“”A-ZÄÖÜ]")
_LEANING = re.compile(r"(?i)\b(?:folgend\w*|wie folgt|unten|oben|obig\w*|vorherig\w*|vorig\w*|nachstehend\w*|"
                      r"tabelle|abschnitt|kapitel|abbildung|siehe|beispielsweise|hier|dieses dokument\w*|"
                      r"following|below|above|see|here|as follows|this document)\b")
# A pointer to reading elsewhere ("Lesen Sie ___ und das … Howto", "Den Grund finden Sie unter ___"): any document
# of the kind fits its gap, and the hand reviews found none of them usable.
_REFERENCE = re.compile(r"(?i)^(?:bitte\s+)?(?:lesen|schauen|sehen|konsultieren)\s+sie\b|"
                        r"\bfinden\s+sie\s+(?:unter|in|im|auf|bei)\b|^(?:please\s+)?(?:read|refer\s+to|consult)\b")
_DEFINES = re.compile(r"(?i)^(?:der|die|das|ein|eine)?\s*(\S+)\s+(?:ist|sind|bezeichnet|bedeutet|heißt|"
                      r"steht für|is|are|means)\b")
_CALLED = re.compile(r"(?i)\b(?:wird|werden)\s+(?:auch\s+)?(?:als\s+)?(\S+)\s+(?:genannt|bezeichnet)\b")
_EXAMPLE = re.compile(r"(?i)\b(?:wie|z\.\s?b\.|zum beispiel|etwa|beispielsweise|such as|e\.g\.)\s*[\"„(`]?$")
_POLITE_MODALS = {"können", "müssen", "sollten", "sollen", "dürfen", "werden", "brauchen", "finden", "erhalten"}


@dataclass(frozen=True)
class Candidate:
    """An answer span in its sentence: the sentence, where the span stands in it, the span and its kind."""

    sentence: str
    start: int
    end: int
    span: str
    kind: str
    score: float = 0.0

    @property
    def gapped(self):
        """The sentence with the span blanked (the gap-fill question)."""
        return self.sentence[:self.start] + GAP + self.sentence[self.end:]

    @property
    def token_kind(self):
        """The kind of word the answer is (a definition's answer is a term)."""
        return TERM if self.kind == DEFINITION else self.kind


# --- Words and sentences ------------------------------------------------------------------------------------------

def tokens(sentence):
    """[(start, end, word)] of a sentence: words, numbers and code, trailing punctuation left out."""
    found = []
    for match in _TOKEN.finditer(sentence):
        word, start = match.group(), match.start()
        while len(word) > 1 and word[-1] in _TRAILING and not _MANPAGE.match(word):
            word = word[:-1]
        if word[:1] in "/$~":
            if start and not sentence[start - 1].isspace() and sentence[start - 1] not in "\"'„“(`":
                continue  # the middle of a longer path ("doc-2.6.*/Documentation")
            word = re.sub(r"-[A-ZÄÖÜ][\wäöüß]*$", "", word)
        if word.startswith("-") and (not re.match(r"^--?[a-zA-Z]", word) or (
                start and not sentence[start - 1].isspace() and sentence[start - 1] not in "\"'„“(`")):
            word, start = word.lstrip("-"), start + len(word) - len(word.lstrip("-"))
        if word and word.casefold().rstrip(".") in _ABBREVIATIONS and "." in sentence[start:start + len(word) + 1]:
            word = ""  # "d.h.", "z.B.": no word of the text
        if word:
            found.append((start, start + len(word), word))
    return found


def sentences(text):
    """The sentences of a text in order: each line (paragraph) split at sentence ends, abbreviations kept whole."""
    out = []
    for line in text.splitlines():
        line = " ".join(line.split())
        if not line:
            continue
        start = 0
        for match in _END.finditer(line):
            piece = line[start:match.start()]
            last = re.findall(r"([\w.]+)[.!?][\"”“)]?$", piece)
            if last and (last[0].casefold().rstrip(".") in _ABBREVIATIONS or re.fullmatch(r"\d{1,2}", last[0])):
                continue  # "z.B. Foo", "am 1. Mai"
            out.append(line[start:match.end()].strip())
            start = match.end()
        if line[start:].strip():
            out.append(line[start:].strip())
    return out


def inflection_key(word):
    """A word reduced to what its German or English inflections share (case and common endings dropped)."""
    word = word.casefold()
    if not re.fullmatch(r"[\wäöüß-]+", word) or re.search(r"\d", word):
        return word  # code, paths and numbers are compared as they are
    for ending in ("ern", "en", "er", "es", "e", "n", "s"):
        if len(word) - len(ending) >= 4 and word.endswith(ending):
            return word[:-len(ending)]
    return word


def same_word(a, b):
    """Whether two words are the same up to case and inflection (or one merely extends the other)."""
    ka, kb = inflection_key(a.replace("-", "")), inflection_key(b.replace("-", ""))  # "Wurzel-Verzeichnis"
    if ka == kb or a.casefold() == b.casefold():
        return True
    short, long_ = sorted((ka, kb), key=len)
    return len(short) >= 4 and (long_.startswith(short) or long_.endswith(short))


# --- The course's vocabulary --------------------------------------------------------------------------------------

@dataclass
class Vocabulary:
    """What the course's passages say about each word: in how many passages it occurs, how often it is written
    capitalised or lower-case inside a sentence, in code position, and after which word."""

    language: str = "de"
    passages: int = 0
    df: Counter = field(default_factory=Counter)
    upper: Counter = field(default_factory=Counter)
    lower: Counter = field(default_factory=Counter)
    code: Counter = field(default_factory=Counter)
    before: dict = field(default_factory=lambda: defaultdict(Counter))
    places: dict = field(default_factory=dict)  # word -> unit vector of the mean of its passages' vectors
    signature: tuple = ()
    # what the course says of its code words: each such word's sentences (numbers into `statements`, the sentences'
    # words as `statement_words` gives them), for said_alike
    said: dict = field(default_factory=lambda: defaultdict(list))
    statements: list = field(default_factory=list)
    # every word's sentences (numbers into `statements`, by statement_word), for described_alike; and the numbers of
    # the passages each word stands in (reading order), for the neighbourhood of a key's wrong answers
    mentions: dict = field(default_factory=lambda: defaultdict(list))
    positions: dict = field(default_factory=lambda: defaultdict(list))
    # what the course says a word is, in its own words: each statement's sentence (as `statements` numbers them) and
    # the descriptions of the package tables' rows ("gpm V:11, I:14 521 Unix-ähnliches Kopieren-und-Einfügen auf der
    # Textkonsole (Daemon)") by the words they name (statement_word), for descriptions()
    texts: list = field(default_factory=list)
    rows: dict = field(default_factory=lambda: defaultdict(list))

    @classmethod
    def from_texts(cls, texts, language="de", signature=(), vectors=None):
        """The vocabulary of these passages (the course's chunks); with their embedding vectors, each word also gets
        the mean vector of the passages it occurs in (where the course uses it: words used in the same passages
        are near)."""
        import numpy as np

        vocab = cls(language=language, signature=signature)
        sums = {}
        for position, text in enumerate(texts):
            vocab.passages += 1
            seen = {}  # in order of appearance: ties among equally frequent words rank the same in every run
            for quoted in _QUOTED.findall(text):
                vocab.code[quoted.rstrip(_TRAILING)] += 1
            for sentence in sentences(text):
                previous = ""
                found = tokens(sentence)
                code = {w for _s, _e, w in found if _CODE_WORD.match(w)}
                if len(found) <= MAX_STATEMENT_WORDS:
                    for word in code:
                        vocab.said[statement_word(word)].append(len(vocab.statements))
                    for word in {statement_word(w) for _s, _e, w in found}:
                        vocab.mentions[word].append(len(vocab.statements))
                    vocab.statements.append(frozenset(statement_words(found)))
                    vocab.texts.append(sentence)
                for number, (_start, _end, word) in enumerate(found):
                    seen.setdefault(word)
                    if _MANPAGE.match(word):
                        vocab.code[word] += 1
                        vocab.code[word.split("(")[0] + "("] += 1
                    if number:
                        (vocab.upper if word[:1].isupper() else vocab.lower)[word.casefold()] += 1
                    if previous:
                        vocab.before[word][previous] += 1
                    previous = word.casefold()
            for name, description in table_rows(text):
                for word in dict.fromkeys([name, *(w for _s, _e, w in tokens(description) if _CODE_WORD.match(w))]):
                    if description not in vocab.rows[statement_word(word)]:
                        vocab.rows[statement_word(word)].append(description)
            vocab.df.update(list(seen))
            for word in seen:
                vocab.positions[word].append(position)
            if vectors is not None:
                vector = np.asarray(vectors[position], dtype=np.float32)
                for word in seen:
                    if not word[:1].islower() or _CODE_INSIDE.search(word) or "(" in word:  # no plain verbs
                        sums[word] = sums[word] + vector if word in sums else vector.copy()
        for word, total in sums.items():
            norm = float(np.linalg.norm(total))
            if norm and vocab.kind_of(word) is not None:
                vocab.places[word] = total / norm
        return vocab

    def idf(self, word):
        """log(passages / passages with the word), the word's rarity in the course."""
        return math.log((self.passages + 1) / (self.df.get(word, 0) + 1)) + 1.0

    def share(self, word):
        """The share of the course's passages that hold the word."""
        return self.df.get(word, 0) / max(self.passages, 1)

    def kind_of(self, word):
        """The word's kind (TERM, NAME, COMMAND, NUMBER) or None when it makes no answer."""
        if _MANPAGE.match(word) or (len(word) > 2 and word[0] in "/$~" and re.search(r"\w", word)):
            return COMMAND
        if re.match(r"^--?[a-zA-Z][\w-]*$", word):
            if re.fullmatch(r"-[rwxst]+-[rwxst-]*", word):
                return None  # a piece of a file's mode as ls -l shows it ("-rw-r--r--"), no option
            # "Datensicherung und -wiederherstellung": the rest of a German compound, no option
            return None if re.fullmatch(r"-[a-zäöüß]{4,}(?:ung|heit|keit|schaft|ion|tät|ität|nis)", word) else COMMAND
        if _NUMBER.match(word):
            return NUMBER if not re.match(r"^0\d", word) else None
        if _ACRONYM.match(word) or _CAMEL.match(word) or re.match(r"^[A-Z][A-Za-z]+\d+$", word):
            return NAME
        folded = word.casefold()
        if word[:1].islower() and re.search(r"[a-z]", word) and (
                _CODE_INSIDE.search(word) or max(self.code.get(f"{word}(", 0), self.code.get(word, 0)) * 3 >= max(
                    1, self.lower.get(folded, 0))):
            return COMMAND if len(word) >= 2 and not word.endswith("-") else None
        if self.language == "de":
            if _NOUN.match(word) and folded not in _NOT_TERMS:
                upper, lower = self.upper.get(folded, 0), self.lower.get(folded, 0)
                if upper and upper >= 4 * lower:
                    return TERM
            return None
        if word[:1].isupper() and re.match(r"^[A-Z][a-z]{2,}$", word) and folded not in _NOT_TERMS:
            upper, lower = self.upper.get(folded, 0), self.lower.get(folded, 0)
            return NAME if upper >= 4 * max(lower, 1) else None
        if _EN_WORD.match(word) and folded not in _NOT_TERMS and self.df.get(word, 0) >= 2:
            return TERM
        return None

    def words_of(self, kind, min_df=1):
        """The course's words of a kind, most frequent first."""
        return [w for w, n in self.df.most_common() if n >= min_df and self.kind_of(w) == kind]


_CODE_WORD = re.compile(r"^(?:[\w.+-]+\(\d\w{0,3}\)|[/$~]\S*\w\S*|--?[a-zA-Z][\w-]*)$")
# a row of the package tables (Debian Reference: "Paket Popcon Größe Beschreibung"), one field a line or all on one
_TABLE_ROW = re.compile(r"(?<![\w./+-])([a-z0-9][\w.+-]*)\s+V:\d+,\s*I:\d+\s+\d+\s+([^\n]*?)"
                        r"(?=\s+[a-z0-9][\w.+-]*\s+V:\d+,\s*I:\d+|\n|$)")


def table_rows(text):
    """[(name, description)] of the package table rows in a passage ("apt-rdepends V:0, I:6 39 rekursive Auflistung
    von Paketabhängigkeiten")."""
    return [(m.group(1), " ".join(m.group(2).split())[:300]) for m in _TABLE_ROW.finditer(text)
            if len(m.group(2).split()) >= 2]


MAX_STATEMENT_WORDS = 60  # longer "sentences" are tables and listings run together, no statements
RARE_SHARE = 0.03  # a word in at most this share of the passages says what a sentence is about
ALIKE_SHARE = 0.3  # share of those words a sentence about a wrong answer must hold to say the same of it


def statement_word(word):
    """A word as statements are compared by: a man page by its name ("vim(1)" is "vim"), other words by their
    inflection key."""
    return inflection_key(word.split("(")[0] if _MANPAGE.match(word) else word)


def statement_words(found):
    """The content words of a sentence's tokens, as statement_word gives them."""
    return {statement_word(w) for _s, _e, w in found if w.casefold() not in STOPWORDS and (len(w) > 2 or _CODE_WORD.match(w))}


def said_alike(word, key, sentence, vocab):
    """Whether the course says of a wrong answer what the key's sentence says of the key, so that it may be right
    too: a sentence of the course names the word with the key and with the key sentence's rarer terms ("/proc und
    /sys … Datenstrukturen des Kernel" for "/sys enthält vom Kernel exportierte Datenstrukturen"; "vim(1) oder
    nano(1) … mcedit" for "Wenn Sie vim(1) nicht mögen, … mcedit(1)"), or names it with two of them or more."""
    numbers = vocab.said.get(statement_word(word))
    if not numbers:
        return False
    own, key_word = statement_word(word), statement_word(key)
    rare = _rare_terms(sentence.replace(key, " ", 1), vocab) - {own, key_word}
    need = math.ceil(ALIKE_SHARE * len(rare))
    for number in numbers:
        words = vocab.statements[number]
        shared = len(rare & words)
        if shared >= max(need, 1 if key_word in words else 2):
            return True
    return False


DESCRIBED_SHARE = 0.75  # a wrong answer the course describes with this share of the words it uses for the key
COPY_SHARE = 0.6  # a sentence holding this share of the key sentence's words is a copy of it (the PDF and HTML)


def _description(word, whole, vocab):
    """The words of the course's sentences that name a word (statement_words), copies of the key's sentence (whose
    words are `whole`) left out."""
    out = set()
    for number in vocab.mentions.get(statement_word(word), ()):
        words = vocab.statements[number]
        if len(words & whole) < COPY_SHARE * len(whole):
            out |= words
    return out


def _stem(word):
    """A word as descriptions are matched: its first five letters (German endings and compounds' tails forgiven)."""
    return word.casefold()[:5]


def _sentence_terms(sentence, key, vocab, leave=()):
    """The rarer words of a sentence besides the key (RARE_SHARE), as _stem gives them."""
    left = {_stem(statement_word(w)) for w in (key, *leave)}
    return {_stem(statement_word(w)) for _s, _e, w in tokens(sentence) if w != key and w.casefold() not in STOPWORDS
            and len(w) > 2 and vocab.share(w) <= RARE_SHARE} - left


def _described_hits(word, terms, whole, vocab):
    """How many of `terms` the course's sentences about a word hold (copies of the key's sentence left out)."""
    return len(terms & {_stem(w) for w in _description(word, whole, vocab)})


def taught(candidate, vocab):
    """Whether the course says more of the key with the sentence's rarer words elsewhere (another sentence, a
    table's row): a fact the course teaches about the key, not a word that happens to stand in one sentence. Keys
    no other sentence describes made the items a lecturer rejected: "drücken Sie die F1-Taste" (any key fits),
    "der Vi-Editor" beside "Texteditor", "DocBook-XML-Dateien" among file kinds of other chapters."""
    if not vocab.mentions:
        return True  # a vocabulary without sentences (built before this rule): no evidence either way
    whole = statement_words(tokens(candidate.sentence))
    return _described_hits(candidate.span, _sentence_terms(candidate.sentence, candidate.span, vocab), whole,
                           vocab) >= 1


def named_for_use(candidate):
    """Whether the key is a word whose name may say what it is for: a noun, a command or function with its manual
    page, a variable ("adduser(8)", "pstree(1)", "$LANGUAGE", "Enter-Taste"); paths, file names and options are
    not read that way ("multi-user.target", "/etc/fstab", "-rf")."""
    return candidate.kind != COMMAND or code_shape(candidate.span) in ("man", "variable", "name", "other")


def partnered(candidate, vocab):
    """Whether the key sentence names another command, path or option beside the key ("pam_unix(8) und
    pam_cracklib(8)", "procmail(1) und formail(1)"): a sentence about how two things go together, which pins the key
    as a description of what one tool does ("Der Befehl pstree(1) zeigt … Hierarchie-Baum") does not."""
    return any(w != candidate.span and _CODE_WORD.match(w) and vocab.kind_of(w) == COMMAND
               for _s, _e, w in tokens(candidate.sentence))


def described_alike(word, key, sentence, vocab):
    """Whether the course describes a wrong answer with as many of the key sentence's rarer words as it describes
    the key (at least two, and DESCRIBED_SHARE of the key's): then the sentence may fit it as well ("screen(1)"
    beside "script(1)" for recording a shell's activities; "find(1)" and "awk(1)" beside "perl(1)" for regular
    expressions over several files)."""
    terms = _sentence_terms(sentence, key, vocab, leave=(word,))
    if len(terms) < 2:
        return False
    whole = statement_words(tokens(sentence))
    hits = _described_hits(word, terms, whole, vocab)
    return hits >= 2 and hits >= DESCRIBED_SHARE * _described_hits(key, terms, whole, vocab)


def _named_together(word, other, whole, vocab):
    """Whether a sentence of the course names both words, copies of the key's sentence (whose words are `whole`)
    left out."""
    other = statement_word(other)
    for number in vocab.mentions.get(statement_word(word), ()):
        words = vocab.statements[number]
        if other in words and len(words & whole) < COPY_SHARE * len(whole):
            return True
    return False


def course_partners(candidate, vocab):
    """The man pages the key's sentence names beside a man-page key that the course also names together with the
    key in another sentence: "Wenn Sie vim(1) nicht mögen, … auch mcedit(1)" where the course says "Wenn Ihnen
    vim(1) oder nano(1) nicht behagen, … mcedit". The course groups them, so the gap asks for one of that group."""
    if code_shape(candidate.span) != "man":
        return []
    whole = statement_words(tokens(candidate.sentence))
    return [w for _s, _e, w in tokens(candidate.sentence) if w != candidate.span and _MANPAGE.match(w)
            and _named_together(candidate.span, w, whole, vocab)]


def outside_group(word, partners, sentence, vocab):
    """Whether a wrong answer is one the course never names beside any of the key's partners (course_partners): the
    odd one out of the group the sentence asks from (grep(1), sed(1), perl(1) beside vim(1) for "auch mcedit(1)";
    umount(8) beside fdisk(8) for "parted(8) … obwohl ___ lange als Standard angesehen wurde")."""
    whole = statement_words(tokens(sentence))
    return bool(partners) and not any(_named_together(word, p, whole, vocab) for p in partners)


def _row_stems(word, vocab):
    """The words of the package tables' rows about a word (what the course says it is, in one line), as _stem gives
    them."""
    return {_stem(statement_word(w)) for row in vocab.rows.get(statement_word(word), ()) for _s, _e, w in tokens(row)
            if w.casefold() not in STOPWORDS and len(w) > 2}


def defined_away(candidate, wrong, vocab):
    """The sentence's rarer words that the course's one-line definition of a man-page key (its package table row,
    "cryptsetup … Werkzeug zur Verschlüsselung von blockorientierten Geräten") holds and that nothing the course
    says of any wrong answer (its rows and sentences) holds: the sentence states what the key is, and the wrong
    answers are something else ("Bei verschlüsselten Daten … mit ___ konfiguriert"). Only the rows count: the
    course's sentences repeat what it teaches, so a key's sentences share the question's words in good items too."""
    if code_shape(candidate.span) != "man" or not vocab.rows.get(statement_word(candidate.span)):
        return set()
    terms = _sentence_terms(candidate.sentence, candidate.span, vocab, leave=wrong)
    hits = terms & _row_stems(candidate.span, vocab)
    if not hits:
        return set()
    whole = statement_words(tokens(candidate.sentence))
    for word in wrong:
        hits -= _row_stems(word, vocab) | {_stem(w) for w in _description(word, whole, vocab)}
    return hits


def singled_out(candidate, wrong, vocab):
    """What in a code word's sentence asks for the key and for none of its wrong answers: a word of the key's own
    shape beside it that the sentence pairs it with ("procmail(1) und ___", "$EDITOR oder ___", "___ und
    pam_cracklib(8)"), or the sentence's rarer words that the course says of the key elsewhere (its sentences and
    table rows) and of no wrong answer ("vom Kernel exportierte Datenstrukturen" for /sys). Empty where the sentence
    says what may hold for any word of the kind: "Sie können die Umgebungsvariable ___ über ~/.bashrc verändern"
    (any variable can be), "einige Optionen von ___ werden auf Nicht-Debian-Systemen nicht unterstützt" (xargs'
    too); the blind judges found such items open to a second answer. A vocabulary without sentences or with too
    few passages to tell rarer words (RARE_SHARE), or a key the course says nothing more of, gives no evidence
    either way (True)."""
    if not vocab.mentions or vocab.passages * RARE_SHARE < 1:
        return {True}  # no sentences, or too few passages to tell a rarer word from a common one
    shape = code_shape(candidate.span)
    pairs = {w for _s, _e, w in tokens(candidate.sentence)
             if w != candidate.span and _CODE_WORD.match(w) and code_shape(w) == shape}
    if pairs:
        return pairs
    whole = statement_words(tokens(candidate.sentence))
    terms = {t for t in _sentence_terms(candidate.sentence, candidate.span, vocab, leave=wrong)
             if t not in STOPWORDS}  # "Nicht-Debian-Systemen" is no word about the key

    def said_of(word):
        return _row_stems(word, vocab) | {_stem(w) for w in _description(word, whole, vocab)}

    key_said = said_of(candidate.span)
    if not key_said:
        return {True}  # the course says nothing more of the key: no evidence either way (as for Plausibility)
    hits = terms & key_said
    for word in wrong:
        if not hits:
            break
        hits -= said_of(word)
    return hits


def named_after(word, key):
    """Whether a wrong answer is named after the key ("ssh-add(1)" for ssh(1), "/etc/fstab.d" for /etc/fstab): its
    name points to the key, which a student then picks as the one the others come from. Or it is the key's program
    in another version ("exim(8)" beside exim4(8)): a second right answer."""
    name, key_name = _name(word), _name(key)
    short, long_ = sorted((name, key_name), key=len)
    if len(short) >= 3 and long_.startswith(short) and long_[len(short):].isdigit():
        return True
    return len(key_name) >= 2 and re.match(re.escape(key_name) + r"[._-]\w", name) is not None


def _rare_terms(text, vocab):
    """The terms a sentence is about, as statement_word gives them: its nouns (in German the capitalised words) and
    code words that few of the course's passages hold."""
    return {statement_word(w) for _s, _e, w in tokens(text)
            if w.casefold() not in STOPWORDS and len(w) > 1 and vocab.share(w) <= RARE_SHARE
            and (_CODE_WORD.match(w) or vocab.language != "de" or w[:1].isupper())}


_cache, _cache_lock = {}, threading.Lock()


def course_vocabulary(course):
    """The vocabulary of a course's indexed passages, built once per process and rebuilt when they change."""
    from courses.models import Course
    from courses.sections import indexed_texts

    course_id = getattr(course, "pk", course)
    language = getattr(course, "language", None) or Course.objects.filter(pk=course_id).values_list(
        "language", flat=True).first() or "de"
    shape, rows = indexed_texts(course_id, with_vectors=True)
    signature = (language, *shape)
    with _cache_lock:
        found = _cache.get(course_id)
        if found is not None and found.signature == signature:
            return found
    rows = list(rows)
    vocab = Vocabulary.from_texts([text for text, _vector in rows], language=language, signature=signature,
                                  vectors=[vector for _text, vector in rows])
    with _cache_lock:
        _cache[course_id] = vocab
    return vocab


# --- Answer candidates -------------------------------------------------------------------------------------------

def _standalone(sentence, words, language):
    """Whether a sentence reads as a complete statement on its own (no question, no listing, no pointer to its
    neighbours or to a table), in the course's language."""
    if not MIN_WORDS <= len(words) <= MAX_WORDS or not sentence.endswith("."):
        return False
    if not sentence[:1].isupper() or sentence.endswith(("..", "…")) or "…" in sentence or "://" in sentence:
        return False
    if sentence.count("(") != sentence.count(")") or sentence.count('"') % 2 or sentence.count("„") != sentence.count(
            "“"):
        return False
    first = words[0][2].casefold()
    if first in _ANAPHORA or _POINTING.match(first):
        return False
    folded = [w.casefold() for _s, _e, w in words]
    if any(w in _BACK_REFERENCES or _POINTING.match(w) for w in folded[1:]):
        return False
    for start, _end, word in words[1:]:
        if word in ("deren", "dessen") and not sentence[:start].rstrip().endswith(","):
            return False
    if first == "sie" and (len(words) < 2 or words[1][2] not in _POLITE_MODALS):
        return False
    if first == "das" and len(words) > 1 and not words[1][2][:1].isupper():
        return False  # "Das ist …", "Das wird …": a pronoun, not an article
    if _OBJECT_ES.search(sentence) or re.search(r"[\w)]\. [a-zäöüß]", sentence):
        return False  # a pronoun pointing outside, or two sentences where the second starts with code
    if _LIKENESS.search(sentence) or _CASE_CLASH.search(sentence):
        return False  # "auf ähnlichem Wege" (like what?), "auf des gleiche": no statement a student can read alone
    if _REFERENCE.search(sentence):
        return False
    if first in ("der", "die", "das", "den", "dem") and len(words) > 1 and words[1][2].casefold() in _NOT_TERMS:
        return False  # "Den Grund …", "Das Ergebnis …": the article points to what the text said before
    if _LEANING.search(sentence) or re.search(r"\d+\.\d+\.\d+", sentence) or ":" in sentence.rstrip(".")[-3:]:
        return False
    if detect_language(sentence, default=language) != language:
        return False
    code = sum(1 for _s, _e, w in words if re.search(r"[/_=$]|\(\d", w) or w.startswith("-"))
    return code <= max(1, len(words) // 6)


def _spelled_by(key, others):
    """Whether the sentence's other words give a code key away: its letters as the initials of a run of capitalised
    words ("Message Of The Day" for /etc/motd, "Filesystem Hierarchy Standard" for …/fhs-2.3.txt.gz), one of its
    words standing in the key ("~foo/" for /home/foo), or the key's name as a German word ("Konsole", /dev/console)."""
    name = key.rstrip("/").rsplit("/", 1)[-1] or key  # a path's own name, not the directories it stands in
    parts = [p for p in re.split(r"[^a-z0-9]+", name.casefold()) if len(p) >= 3 and p not in ("txt", "gz")]
    words = [w for w in others if re.fullmatch(r"[\wäöüß-]+", w)]
    runs, run = [], []
    for word in [*words, ""]:
        if word[:1].isupper():
            run.append(word)
        else:
            if len(run) >= 2:
                runs.append("".join(w[0] for w in run).casefold())
            run = []
    folded = {w.casefold() for w in words if len(w) >= 3 and w.casefold() not in STOPWORDS}
    if _locale_named(name, folded):
        return True
    for part in parts:
        if len(part) <= 5 and part.isalpha() and any(part in r and len(r) <= len(part) + 2 for r in runs):
            return True
        if any(w == part or (len(w) >= 5 and _near(w, part)) for w in folded):
            return True
    return False


def gives_away(candidate, wrong):
    """Whether the rest of the sentence holds a part of the key that none of the wrong answers has, so that it
    points to the key: "LDAP-Server" beside "libpam-ldap", "X-Server" beside "X-Clients", "malloc(3)" beside
    "$MALLOC_CHECK_", "--set-selection" beside "debconf-set-selections" ("apt-mark" beside "apt-Paket" is none:
    "apt-get" has it too)."""
    def parts(word):
        word = word.split("(")[0] if _MANPAGE.match(word) else word
        return {p for p in re.split(r"[^a-zäöüß0-9]+", word.casefold()) if p}

    key = parts(candidate.span)
    if len(key) > 1 and candidate.kind != COMMAND:  # a compound's head ("Server") is what its wrong answers share
        key -= {sorted(parts(candidate.span), key=candidate.span.casefold().find)[-1]}
    shared = set().union(*(parts(w) for w in wrong)) if wrong else set()
    rest = candidate.sentence[:candidate.start] + " " + candidate.sentence[candidate.end:]
    around = [p for w in rest.split() for p in parts(w)]
    for part in key - shared:
        if len(part) >= 3 and any(part in p for p in around) or (
                len(part) < 3 and part.isalpha() and any(p == part for p in around)):
            return True
    if candidate.kind == COMMAND and _shares_letters(candidate.span, rest, wrong):
        return True
    if candidate.token_kind == TERM and echoes(candidate.span, rest) and not any(
            same_family(w, candidate.span) for w in wrong):
        return True  # "Konfigurationsdateien" beside "Konfigurationsinformationen" in the sentence
    if candidate.kind == COMMAND:
        # a word of the sentence that looks like the key's name and like none of the wrong answers' ("mpack-Paket"
        # for munpack(1), "ripgrep-Paket" for rg(1), "IPROUTE2" for ip(8))
        name, names = _name(candidate.span), [_name(w) for w in wrong]
        for word in re.split(r"[\s\"„“”'(),;:]+", rest):
            for piece in {word, *re.split(r"[-/.]", word)}:
                if len(piece) >= 2 and piece[:1].islower() or re.fullmatch(r"[A-Z0-9]{2,}", piece):
                    folded = piece.casefold()
                    if _resembles(name, folded) and not any(_resembles(n, folded) for n in names):
                        return True
    return False


def _shares_letters(key, rest, wrong):
    """Whether a word of the sentence shares letters with the key's name that no wrong answer has: a piece of a word
    (3 letters or more, no stop word) standing in the name ("modules.dep" for depmod(8), "MD5sum-Datenbank" for
    debsums(1)), a number of the name ("auf 0 setzen" for -c0), or a word beginning as the name does for at least 3
    of its letters and three quarters of it ("Prozess-ID" for /proc)."""
    name, names = _name(key), [_name(w) for w in wrong]
    digits = set(re.findall(r"\d+", name))
    for piece in re.findall(r"[a-zäöüß]+|\d+", rest.casefold()):
        if piece.isdigit():
            if piece in digits and not any(piece in re.findall(r"\d+", n) for n in names):
                return True
            continue
        if len(piece) < 3 or piece in STOPWORDS:
            continue
        if piece in name and not any(piece in n for n in names):
            return True
        common = len(_common_prefix(piece, name))
        if len(name) >= 4 and len(piece) > len(name) and common >= max(3, 0.75 * len(name)) and not any(
                n.startswith(name[:common]) for n in names):
            return True
    return False


LURE_LETTERS = 5  # the shortest start of a sentence's word that, standing in a wrong answer's name, names it


def lures(word, candidate):
    """Whether a wrong code answer's name holds the start of a word of the sentence (5 letters or more) that the
    key's name does not: the sentence seems to name it, so a student may defend it as a second right answer
    (lpoptions(1) beside "… bieten Optionen, um das Drucken anzupassen", where the key is lpr(1)). The mirror of
    gives_away, which reads the key's name in the sentence."""
    name, key = _name(word), _name(candidate.span)
    rest = candidate.sentence[:candidate.start] + " " + candidate.sentence[candidate.end:]
    for piece in re.findall(r"[a-zäöüß]+", rest.casefold()):
        if len(piece) < LURE_LETTERS or piece in STOPWORDS or piece in key:
            continue
        for size in range(len(piece), LURE_LETTERS - 1, -1):  # the longest start of the word the name holds
            start = piece[:size]
            if start in name:
                if start not in key:
                    return True
                break
    return False


def manual_section(word):
    """A man page's section number ("8" for mount(8), "1" for openssl(1ssl)), or ''."""
    match = _MANPAGE.match(word)
    return re.search(r"\((\d)", word).group(1) if match else ""


def other_section(word, key):
    """Whether a wrong man page stands in another section of the manual than the key's: the section says what kind
    of command it is (8: the administrator's commands and daemons, 1: everyone's, 5: file formats), so cp(1) beside
    the daemon gpm(8) or crontab(1) beside the PAM module pam_unix(8) is the odd one out nobody picks (a blind review
    of 28 items, docs/questions-rubric.md)."""
    mine, theirs = manual_section(key), manual_section(word)
    return bool(mine and theirs) and mine != theirs


def too_common(word, key, vocab):
    """Whether the course uses a wrong code word in more than COMMON_FACTOR times as many passages as the key (and in
    more than 4): one every reader knows as something else, no plausible answer to a sentence about a special one
    (apt-get(8) beside debsums(1), ls(1) [12] as "an alternative to telnet(1)" beside ssh(1) [5], ssh(1) among
    printing commands; a blind judge's reading, docs/questions-rubric.md). The key's frequent siblings stay (bash(1)
    [20] beside find(1) [14])."""
    return vocab.df.get(word, 0) > max(COMMON_FACTOR * vocab.df.get(key, 0), 4)


def other_tree(word, key):
    """Whether a wrong path lies under another top directory than a key two levels deep or more: the top directory
    says what a file is (/etc: configuration, /dev: a device, /proc: the kernel's view), so /dev/sda or /var/lock among
    the files that hold mount options beside /etc/fstab is the odd one out. A top-level key (/sys) draws top-level
    directories."""
    if code_shape(key) != "path" or code_shape(word) != "path":
        return False
    parts, theirs = [p for p in key.split("/") if p], [p for p in word.split("/") if p]
    if not key.startswith("/"):
        return False
    return not word.startswith(f"/{parts[0]}/") if len(parts) >= 2 else len(theirs) != 1


def _common_prefix(a, b):
    """The letters two words begin with alike."""
    at = 0
    while at < min(len(a), len(b)) and a[at] == b[at]:
        at += 1
    return a[:at]


def family(word):
    """What names a wrong answer's family, as (shape, name), or None: a code word's name before its first '.', '-' or
    '_' ("mkfs" for mkfs.ext3(8), "grep" for grep-status(1), "systemd" for systemd.unit(5)), a path's directory
    ("/var" for /var/lock), a compound noun's part before its head ("boot" for Bootstrap-Prozess). Options (-c3,
    -u1) have none."""
    if word.startswith("-"):
        return None
    shape = code_shape(word)
    if shape == "path":
        parent = word.rstrip("/").rsplit("/", 1)[0]
        return ("path", parent or "/")
    if _MANPAGE.match(word) or shape in ("variable", "file", "name", "other"):
        if not re.search(r"[a-z0-9]", word.casefold()) or (shape in ("name", "other") and word[:1].isupper()):
            pass  # a noun, below
        else:
            return ("code", re.split(r"[._-]", _name(word))[0] or _name(word))
    noun_head = morphology.head(word)
    if noun_head:
        folded = word.casefold()
        at = folded.rfind(noun_head)
        modifier = folded[:at].strip("-") if at > 0 else ""
        return ("noun", modifier) if modifier else None
    return None


def same_family(a, b):
    """Whether two answers are of one family (``family``): the same directory, or names of which one begins the other
    (mkfs and mkfs.ext2, $LANG and $LANGUAGE, Boot- and Bootstrap-Prozess: near-synonyms or siblings)."""
    fa, fb = family(a), family(b)
    if not fa or not fb or fa[0] != fb[0]:
        return False
    if fa[0] == "path":
        return fa[1] == fb[1]
    short, long_ = sorted((fa[1], fb[1]), key=len)
    return len(short) >= 3 and long_.startswith(short)


def siblings(word, other, key):
    """Whether two wrong answers are of one family the key is not part of: a second of them makes the key the odd one
    out (fdisk(8) among mkfs(8), mkfs.ext2(8), mkfs.ext3(8)) or stands beside its near-synonym (Boot-Prozess,
    Bootstrap-Prozess), so a gap fill takes at most one."""
    return same_family(word, other) and not same_family(word, key)


def echoes(word, sentence):
    """Whether a wrong noun's first part begins a word of the sentence ("startet einen Startprozess"): a wrong
    answer that repeats the sentence reads as a tautology nobody picks."""
    found = family(word)
    if not found or found[0] != "noun" or len(found[1]) < 4:
        return False
    return any(w.casefold().startswith(found[1]) for _s, _e, w in tokens(sentence) if w != word)


def adjective_before(sentence, start):
    """The adjective right before the gap, over a truncated compound ("die linke Strg- und ___": "linke"), or ''."""
    before = tokens(sentence[:start])
    at = len(before) - 1
    if at >= 1 and before[at][2].casefold() in ("und", "oder", "bzw") and sentence[before[at - 1][1]:][:1] == "-":
        at -= 2
    if at < 0:
        return ""
    word = before[at][2]
    if word in _DETERMINERS or word in STOPWORDS or not re.fullmatch(r"[a-zäöüß]{3,}(?:e|en|er|es|em)", word):
        return ""
    return word


def fits_adjective(word, candidate, vocab):
    """Whether a wrong noun fits the adjective before the gap as the key does: where the course writes the adjective
    before two nouns of the key's head or more ("linke Strg-Taste", "linken Alt-Taste"), only those (no "linke
    F1-Taste": a key with no left one); an adjective the course writes before one such noun only says nothing
    (the bare head, "fernen Server", counts as none)."""
    adjective = adjective_before(candidate.sentence, candidate.start)
    noun_head = morphology.head(candidate.span)
    if not adjective or not noun_head:
        return True
    stem = inflection_key(adjective)
    cache = vocab.__dict__.setdefault("_after_adjective", {})
    if (stem, noun_head) not in cache:
        cache[stem, noun_head] = {w for w, before in vocab.before.items() if w[:1].isupper()
                                  and noun_head[:-1] in w.casefold() and morphology.head(w) == noun_head and family(w)
                                  and any(inflection_key(p) == stem for p in before)}
    written = cache[stem, noun_head]
    return len(written) < 2 or word in written


def _name(word):
    """A code word's own name: a man page without its section, a path's last part, a variable without its '$'."""
    word = word.split("(")[0] if _MANPAGE.match(word) else word
    return (word.rstrip("/").rsplit("/", 1)[-1] or word).strip("$-~").casefold()


def _resembles(name, word):
    """Whether a word of a sentence looks like a command's name: nearly the same letters ("mpack", "munpack"), or
    the name is a short abbreviation of it ("rg" in "ripgrep", "ip" in "iproute2")."""
    if len(name) < 2:
        return False
    if name == word:
        return True
    if len(name) >= 4 and len(word) >= 4 and difflib.SequenceMatcher(None, name, word).ratio() >= 0.75:
        return True
    letters = iter(word)
    return len(name) <= 3 and len(word) >= len(name) + 2 and word[0] == name[0] and all(c in letters for c in name)


def _locale_named(name, words):
    """Whether a locale key ("en_US.UTF-8") has its language named by the sentence ("nicht auf Englisch"): the first
    four letters of the language's English or own name (Django's table of languages) begin one of the words."""
    from django.conf.locale import LANG_INFO

    match = re.match(r"^([a-z]{2,3})_[A-Z]{2}\b", name)
    info = LANG_INFO.get(match.group(1), {}) if match else {}
    prefixes = {n.casefold()[:4] for n in (info.get("name", ""), info.get("name_local", "")) if len(n) >= 4}
    return any(w[:4] in prefixes for w in words)


def _near(a, b):
    """Whether two words differ by at most one letter (Konsole, console)."""
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) <= 1
    short, long_ = sorted((a, b), key=len)
    return any(long_[:i] + long_[i + 1:] == short for i in range(len(long_)))


def _key_score(word, kind, vocab, section_counts, sentence_words):
    """How good a key the word makes (None: none at all): rare in the course, frequent in its section."""
    if len(word) < 3 and kind != NUMBER:
        return None
    others = [w for w in sentence_words if w != word]
    if any(same_word(word, w) or (len(word) >= 4 and word.casefold() in w.casefold()) for w in others):
        return None  # the sentence gives the answer away
    parts = [p for w in others for p in re.split(r"[-/.()]", w.casefold()) if len(p) >= 5]
    if any(p in word.casefold() for p in parts):
        return None  # a word of the sentence names the answer ("der ifconfig-Befehl" for /sbin/ifconfig)
    if sentence_words.count(word) > 1:
        return None
    if kind == COMMAND:
        stem = re.sub(r"\(\w+\)$", "", word).strip("/$-~").casefold()
        names = [p for w in others for p in re.split(r"[-/.()\"„“]", w.casefold()) if len(p) >= 3]
        if len(stem) >= 3 and any(stem in p or (len(p) >= 4 and stem.startswith(p)) for p in names):
            return None  # "vimtutor" for vim, "Perl-Erweiterungen" for perlre(1): the sentence spells the key
        if _spelled_by(word, others):
            return None
    if kind == NUMBER:
        return 0.8 if 1 < len(word) <= 4 else None
    if vocab.passages >= 20 and vocab.share(word) > MAX_DF_SHARE:
        return None
    tf = section_counts.get(word, 0)
    score = vocab.idf(word) / max(1.0, math.log(vocab.passages + 2)) * (1 + 0.4 * min(tf - 1, 3))
    if kind == TERM:
        score += 0.3 if len(word) >= 8 else -0.3 if len(word) <= 6 else 0.0  # short nouns are general words
        score += 0.2 if "-" in word else 0.0
        score += 0.4 if tf >= 2 else 0.0  # a term the section is about
        if tf < 2 and "-" not in word and len(word) < 10:
            score -= 0.6  # a general noun the section mentions once: other words would often fit as well
    if kind == COMMAND:
        score += CODE_FIRST  # a closed class with a shape: its distractors are of the same kind by construction
    if vocab.df.get(word, 0) < 2:
        score -= 0.5  # used once only: a word the course does not use
    return score


# The callouts of a text (a PDF writes "Tipp", "Anmerkung", "Warnung" in front of a box's first sentence).
_CALLOUT = re.compile(r"^(?:Anmerkung|Tipp|Warnung|Achtung|Hinweis|Wichtig|Vorsicht|Note|Tip|Warning|Caution|"
                      r"Important)\s+(?=\S)")


def answer_candidates(section_text, course, language=None, *, vocabulary=None, limit=None):
    """Candidates for gap-fill answers in a section, best first, at most one per sentence and per answer: each a
    sentence that stands on its own, and in it a key term, name, command, number or defined term."""
    vocab = vocabulary or course_vocabulary(course)
    language = language or vocab.language
    section_counts = Counter(w for s in sentences(section_text) for _a, _b, w in tokens(s))
    found, seen_sentences = [], set()
    for sentence in sentences(section_text):
        sentence = _CALLOUT.sub("", sentence)
        if sentence in seen_sentences:
            continue
        seen_sentences.add(sentence)
        words = tokens(sentence)
        if not _standalone(sentence, words, language):
            continue
        sentence_words = [w for _s, _e, w in words]
        if len([w for w in sentence_words if w.casefold() not in STOPWORDS and len(w) > 2]) <= MIN_CONTEXT_WORDS + 1:
            continue  # too little said around the gap to decide
        defined = _defined_term(sentence)
        best = None
        for number, (start, end, word) in enumerate(words):
            kind = vocab.kind_of(word)
            if kind is None:
                continue
            if number == 0 and kind != TERM:
                continue  # a sentence opening with a gap of code or digits reads badly
            score = _key_score(word, kind, vocab, section_counts, sentence_words)
            if score is None:
                continue
            this_kind = kind
            if word == defined and kind in (TERM, NAME):
                this_kind, score = DEFINITION, score + 0.5
            if number + 1 < len(words) and words[number + 1][0] == end + 1 and sentence[end] == "-":
                continue
            if start and sentence[start - 1] == "-" or sentence[end:end + 1] == "-":
                continue  # a part of a compound written with a hyphen
            if kind == TERM and determiner_before(sentence, start) in ("des", "eines") and word.endswith("s"):
                continue  # a genitive ("des temporären Verzeichnisses"): nominative wrong answers give it away
            if kind in (TERM, NAME) and _in_name(words, number, sentence):
                continue  # one word of a multi-word name ("Midnight Commander")
            if kind == COMMAND and _inside_code(sentence, start, end):
                continue  # a piece of a longer command line or pattern ("mc /etc ___", "___[0123456S].d")
            if kind == COMMAND and _EXAMPLE.search(sentence[:start]):
                continue  # an example ("Gerätenamen wie /dev/sda"): any other of its kind is an example too
            score -= 0.02 * max(0, len(words) - 22)
            if best is None or score > best.score:
                best = Candidate(sentence, start, end, word, this_kind, round(score, 3))
        if best is not None:
            found.append(best)
    found = [c for c in found if c.score >= MIN_SCORE]
    found.sort(key=lambda c: -c.score)
    chosen, keys = [], set()
    for candidate in found:
        key = inflection_key(candidate.span)
        if key in keys:
            continue
        keys.add(key)
        chosen.append(candidate)
    return chosen[:limit] if limit else chosen


def _inside_code(sentence, start, end):
    """Whether the span at start:end is part of a longer quoted command or pattern, not a code word of its own."""
    before, after = sentence[start - 1:start], sentence[end:end + 1]
    if before == "“" or before == '"' and sentence[:start].count('"') % 2 == 0:
        return True  # right after a closing quote: '"strictatime"-Option' is no option
    if after == "/" and sentence[end + 1:end + 2] in ('"', "“"):
        end, after = end + 1, sentence[end + 1:end + 2]  # a directory written with its slash ("/dev/")
    if before and not (before.isspace() or before in "\"„“'(`") or after and not (after.isspace() or after in
                                                                                    "\"“'),.;:`?!"):
        return True
    opening = max(sentence.rfind('"', 0, start), sentence.rfind("„", 0, start))
    if opening >= 0 and sentence[:start].count('"') % 2 + sentence[:start].count("„") - sentence[:start].count("“"):
        closing = min([i for i in (sentence.find('"', end), sentence.find("“", end)) if i >= 0] or [len(sentence)])
        return sentence[opening + 1:closing].strip() not in (sentence[start:end], sentence[start:end].rstrip("/"))
    return False


def _in_name(words, number, sentence):
    """Whether the word at `number` stands right beside another capitalised word, as in a multi-word name."""
    for other in (number - 1, number + 1):
        if not 0 < other < len(words):
            continue
        start, end, word = words[other]
        between = sentence[min(end, words[number][1]):max(start, words[number][0])]
        if word[:1].isupper() and word.casefold() not in _NOT_TERMS and between.strip() == "":
            return True
    return False


def _defined_term(sentence):
    """The term a sentence defines ("Der Bootloader ist …", "… wird auch Superuser genannt"), or ''."""
    match = _DEFINES.match(sentence) or _CALLED.search(sentence)
    return match.group(1).rstrip(",.") if match else ""


# --- Distractors ------------------------------------------------------------------------------------------------

_vectors, _vectors_lock = {}, threading.Lock()


def _course_embed(course):
    """A function embedding words with the course's embedding model (vectors cached per course and model)."""
    from tutor.questions.item_checks import course_embedder

    course_id = getattr(course, "pk", course)
    name, embedder = course_embedder(course_id)

    def embed(words):
        with _vectors_lock:
            cache = _vectors.setdefault(name, {})
            missing = [w for w in dict.fromkeys(words) if w not in cache]
        if missing:
            vectors = embedder.embed_passages(missing)
            with _vectors_lock:
                cache.update({w: [float(x) for x in v] for w, v in zip(missing, vectors, strict=True)})
        return [cache[w] for w in words]

    return embed


def determiner_before(sentence, start):
    """The article or determiner that governs the word at `start` (skipping up to two adjectives), or ''."""
    before = [w.casefold() for _s, _e, w in tokens(sentence[:start])][-3:]
    for word in reversed(before):
        if word in _DETERMINERS:
            return word
        if not re.match(r"^[a-zäöüß]+(?:e|en|er|es|em)$", word):
            return ""
    return ""


def _narrowed(pool, keep, k):
    """The pool narrowed to the words `keep` accepts, when at least k are left (else as it was)."""
    narrowed = [w for w in pool if keep(w)]
    return narrowed if len(narrowed) >= k else pool


def _fitting(pool, key, candidate, vocab, k):
    """The German nouns of the pool that may fit the gap's grammar: written like the key (no capitals inside a
    plain word) and used with an article somewhere in the course (a noun, not a name); how well each fits the
    gap's article and the key's ending is weighed in the ranking (grammar_fit)."""
    plain = not re.search(r"[A-ZÄÖÜ]{2}", key)
    pool = _narrowed(pool, lambda w: not plain or not re.search(r"[A-ZÄÖÜ]{2}", w), k)
    return _narrowed(pool, lambda w: any(vocab.before.get(w, {}).get(d) for d in _ARTICLES), k)


def grammar_fit(word, key, determiner, vocab):
    """0..1: how well a German noun fits where the key stands: seen after the gap's article or quantity word, and
    ending like the key (case and number)."""
    fit = 0.0
    if determiner and vocab.before.get(word, {}).get(determiner):
        fit += 0.4
    if word[-2:] == key[-2:]:
        fit += 0.6
    elif word[-1:] == key[-1:]:
        fit += 0.3
    return fit


def _number_distractors(key, vocab, k):
    value = float(key.replace(",", "."))
    own = {w for w in vocab.df if _NUMBER.match(w) and len(w) == len(key) and w != key}
    ranked = sorted(own, key=lambda w: (abs(float(w.replace(",", ".")) - value), w))
    if len(ranked) < k and key.isdigit():
        number = int(key)
        for near in (number + 1, number - 1, number * 2, number + 2, max(number // 2, 0), number - 2, number * 10):
            text = str(near)
            if near > 0 and text != key and text not in ranked:
                ranked.append(text)
    return ranked


def distractor_candidates(candidate, course, k=3, *, vocabulary=None, embed=None, exclude=(), section_words=()):
    """Up to `k` wrong answers for the candidate, best first: words of the same kind from the course's own
    vocabulary used in passages like the key's (the mean of their passages' vectors; without them, near the key
    and its sentence in the embedding space), weighed by how well they fit the gap's grammar (grammar_fit) and a
    little by whether the section uses them; never in the source sentence, never the key again up to case or
    inflection."""
    vocab = vocabulary or course_vocabulary(course)
    key, kind = candidate.span, candidate.token_kind
    in_sentence = {w.casefold() for _s, _e, w in tokens(candidate.sentence)}
    excluded = [key, *exclude]

    def allowed(word):
        if word.casefold() in in_sentence or word.casefold() in candidate.sentence.casefold():
            return False
        return not any(same_word(word, other) for other in excluded)

    if kind == NUMBER:
        pool = [w for w in _number_distractors(key, vocab, k) if allowed(w)]
        return pool[:k]
    pool = [w for w in vocab.words_of(kind, min_df=2 if vocab.passages >= 10 and kind != COMMAND else 1)
            if allowed(w)]  # a command named once is still a command; a noun used once may be no term
    if kind == COMMAND:
        shape = code_shape(key)
        pool = [w for w in pool if code_shape(w) == shape]
        # apt-get(8) beside debsums(1), bash(1) beside gdb(1): a command used all over the course is no
        # plausible answer to a sentence about a special one
        pool = [w for w in pool if not too_common(w, key, vocab)]
        if shape == "name" and vocab.code.get(f"{key}("):  # a command with a man page: only other commands
            pool = [w for w in pool if vocab.code.get(f"{w}(")]
        if shape == "man":  # the key's own manual section: administrator's commands (8) among them, formats (5) …
            pool = [w for w in pool if not other_section(w, key)]
        if shape == "path":  # /etc/fstab among /etc's files, /run among top directories
            pool = [w for w in pool if not other_tree(w, key)]
        if shape == "file":  # multi-user.target: other targets, not de_DE.UTF-8
            pool = [w for w in pool if w.rsplit(".", 1)[-1] == key.rsplit(".", 1)[-1]]
        if shape == "variable":  # $PATH among the environment's variables, not a script's $unit or a "$LC_"
            pool = [w for w in pool if w[1:].isupper() == key[1:].isupper() and not w.endswith("_")]
    if kind == COMMAND and vocab.positions.get(key):
        # the wrong answers come from where the key is used (builtins(1) beside bash(1), not apt-cache(8) from the
        # package chapter): a word far from every passage of the key is one nobody reading the sentence would pick
        pool = [w for w in pool if neighbours(w, key, vocab)]
    if kind == TERM and vocab.positions.get(key):
        # a noun from where its sentence stands, not from wherever the key is used (Konteninformationen and
        # Backtrace-Informationen of other chapters beside Archivinformationen; Heimatverzeichnis beside the archive's
        # Wurzelverzeichnis); commands placed this way drew worse ones (chmod(1), sysctl(8) beside script(1))
        places = sentence_places(candidate, vocab)
        pool = [w for w in pool if near_places(w, places, vocab)]
    determiner = determiner_before(candidate.sentence, candidate.start) if kind in (TERM, NAME) else ""
    if kind in (TERM, NAME) and vocab.language == "de":
        pool = _fitting(pool, key, candidate, vocab, k)
    if kind == TERM and vocab.language == "de":
        # only nouns of the gap's number and gender (a plural after "Jede ___" gives the key away), and none that
        # shares the key's first part (Unix-Definition, Unix-Tradition: near-synonyms, a second answer)
        pool = [w for w in pool if morphology.agrees(w, key, determiner, vocab) and not _same_modifier(w, key)]
        if SAME_HEAD_NOUNS:
            # nouns of the course in general make implausible wrong answers (a hand review found 5 of 23 usable):
            # only compounds of the key's own head ("NORMAL-Modus", "EINGABE-Modus") are of the same kind
            head = morphology.head(key)
            pool = [w for w in pool if head and head not in _BROAD_HEADS and morphology.head(w) == head]
            # the head alone ("Verzeichnis" beside "Heimatverzeichnis") names the key's kind: true of the key too
            pool = [w for w in pool if not w.casefold().startswith(head) and _after(w, head) == _after(key, head)]
    pool = pool[:400]
    if not pool:
        return []
    if embed is None and key in vocab.places:
        # where the course uses the words: near words stand in passages about the same things
        pool = [w for w in pool if w in vocab.places]
        vectors = [vocab.places[key], vocab.places[key], *(vocab.places[w] for w in pool)]
    else:
        embed = embed or _course_embed(course)
        context = candidate.sentence[:candidate.start] + candidate.sentence[candidate.end:]
        vectors = embed([key, context, *pool])
    target, around = vectors[0], vectors[1]
    length = len(key)
    section = set(section_words or ())

    def closeness(item):
        word, vector = item
        similarity = (0.5 * sum(a * b for a, b in zip(target, vector, strict=False))
                      + 0.5 * sum(a * b for a, b in zip(around, vector, strict=False)))
        similar_length = -0.15 * abs(math.log((len(word) + 1) / (length + 1)))
        grammar = 0.3 * grammar_fit(word, key, determiner, vocab) if kind == TERM and vocab.language == "de" else 0
        return similarity + similar_length + grammar

    ranked = [w for w, _v in sorted(zip(pool, vectors[2:], strict=True),
                                    key=lambda item: closeness(item) + (0.05 if item[0] in section else 0.0),
                                    reverse=True)]
    chosen = []
    for word in ranked:
        if any(same_word(word, other) for other in chosen):
            continue
        chosen.append(word)
        if len(chosen) == k:
            break
    return chosen


# --- What the course says a wrong answer is ------------------------------------------------------------------------

DESCRIPTION_PIECES = 10  # the course's sentences and table rows about a word that make its description
PLAUSIBLE_MARGIN = 0.04  # a wrong man page whose description is this much further from the sentence than the key's


def descriptions(word, sentence, vocab, limit=DESCRIPTION_PIECES):
    """What the course says a word is, in its own words: the package tables' rows that name it ("gpm … Unix-ähnliches
    Kopieren-und-Einfügen auf der Textkonsole (Daemon)"), then the sentences that name it in reading order, copies of
    the question's sentence (the PDF holds the HTML chapters again) and bare names (a table's cells) left out; at most
    `limit`."""
    whole = statement_words(tokens(sentence))
    name = statement_word(word)
    # the word as it stands in a sentence about it: a man page with its section ("find(1)", not the verb "finden",
    # whose inflection key is the same), other words as they are written
    written = word.split("(")[0] + "(" if _MANPAGE.match(word) else word
    out = list(vocab.rows.get(name, ()))
    for number in vocab.mentions.get(name, ()):
        if len(out) >= limit:
            break
        words = vocab.statements[number]
        if len(words) >= 3 and len(words & whole) < COPY_SHARE * len(whole):  # no bare name (a table's cell)
            text = vocab.texts[number]
            if written in text and text not in out:
                out.append(text)
    return out[:limit]


class Plausibility:
    """How near what the course says of a word is to the gap's sentence (the sentence without the key): the best
    cosine of its descriptions' vectors (the course's embedding model) to the sentence's. A wrong answer far below
    the key is one the course describes as something else (xev(1) "reine X-Appl." among CUPS's printing commands,
    vipw(8) beside gpm(8) as a daemon, systemd.service(5) for APT's archives), and a key far above all its wrong
    answers is given away by what the sentence says of it ("Paketabhängigkeiten rekursiv" → apt-rdepends(8)).
    Only man pages are judged (a tool's name says what it is for; paths, options and variables are read by their
    shape); the vectors are computed only when asked for (the last few candidates of an item)."""

    def __init__(self, candidate, vocab, embed):
        self.candidate, self.vocab, self.embed = candidate, vocab, embed
        self.applies = code_shape(candidate.span) == "man" and bool(vocab.texts)
        self.context = " ".join((candidate.sentence[:candidate.start] + " " + candidate.sentence[candidate.end:]).split())
        self._scores = {}

    def score(self, word):
        """The word's score, or None where the course describes it nowhere (no evidence either way)."""
        if word not in self._scores:
            candidate = self.candidate
            pieces = descriptions(word, candidate.sentence, self.vocab)
            if not pieces:
                self._scores[word] = None
            else:  # one call with the sentence (an embedder's cache makes it cheap; a stand-in's space is one call's)
                context, *vectors = self.embed([self.context, *pieces])
                self._scores[word] = max(sum(a * b for a, b in zip(context, vector, strict=True)) for vector in vectors)
        return self._scores[word]

    def below(self, word):
        """How far the word's score lies below the key's (0 where either is not described or the rule does not
        apply)."""
        if not self.applies:
            return 0.0
        key = self.score(self.candidate.span)
        if key is None:
            return 0.0
        own = self.score(word)
        return 0.0 if own is None else key - own

    def plausible(self, word):
        """Whether the course describes the word about as near to the sentence as the key (PLAUSIBLE_MARGIN)."""
        return self.below(word) <= PLAUSIBLE_MARGIN


NEAR_PASSAGES = 40  # passages (in reading order) a wrong answer may stand from the key: the same chapter's topic


def neighbours(word, key, vocab, near=None):
    """Whether a word stands within NEAR_PASSAGES passages (in reading order) of a passage that holds the key."""
    return near_places(word, vocab.positions.get(key) or [], vocab, near)


def sentence_places(candidate, vocab):
    """The passages (reading order) that hold the key's sentence: those of the key that also hold the sentence's
    rarest words (each narrowing as long as some are left), or all of the key's."""
    places = set(vocab.positions.get(candidate.span) or [])
    rare = sorted({w for _s, _e, w in tokens(candidate.sentence) if w != candidate.span and len(w) > 3
                   and w.casefold() not in STOPWORDS and vocab.df.get(w)}, key=lambda w: (vocab.df[w], w))
    for word in rare[:3]:
        narrowed = places & set(vocab.positions.get(word) or [])
        if narrowed:
            places = narrowed
    return sorted(places)


def near_places(word, places, vocab, near=None):
    """Whether a word stands within NEAR_PASSAGES passages (reading order) of one of these passages."""
    near = NEAR_PASSAGES if near is None else near
    for position in vocab.positions.get(word) or []:
        at = bisect.bisect_left(places, position - near)
        if at < len(places) and places[at] <= position + near:
            return True
    return False


def _after(word, head):
    """What a noun has after its head ("Zielverzeichnisses": "ses" after "verzeichnis"): its case and number."""
    folded = word.casefold()
    at = folded.rfind(head)
    return folded[at + len(head):] if at >= 0 else None


def _same_modifier(word, key):
    """Whether two hyphenated compounds share their first part ("GUI-Oberfläche", "GUI-Umgebung")."""
    return "-" in word and "-" in key and word.split("-")[0].casefold() == key.split("-")[0].casefold()


def code_shape(word):
    """The shape of a code word: a man page, path, option, variable or a plain name."""
    if _MANPAGE.match(word):
        return "man"
    if word.startswith(("/", "~/")):
        return "path"
    if word.startswith("-"):
        return "option"
    if word.startswith("$"):
        return "variable"
    if re.search(r"\.\w", word):
        return "file"
    return "name" if re.fullmatch(r"[a-z][a-z0-9+-]*", word) else "other"
