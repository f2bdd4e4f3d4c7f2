"""Words of a question that the course never uses and that are no word of the general language: the names of
things the texts do not cover ("podman", "Tailscale", "certbot").

Retrieval always finds *something* near a question about a tool the course never mentions: on the demo course,
questions about podman, certbot or a YubiKey retrieve passages as similar as answerable questions do (e5 similarity
0.84–0.87 either way), so the evidence of tutor.chat.answerability passed 8 of 10 of them. What does tell them
apart is a word of the question that the course's term counts (CourseTerm) never saw and that is not a word of
German or English at all (wordfreq's frequency lists, both languages, with German inflection endings and two-part
compounds tried: "verwandle" is "verwandeln", "Pixelbild" is "Pixel" + "Bild"). Such a word names the thing asked
about, and a course that never names it cannot answer. A misspelt course word ("Pasword" for "Passwort": within
one or two edits of a term of the course, fuzzystrmatch's levenshtein) is not unknown. The other way round, a
question that names something the course names word for word ("Wozu dient etckeeper?") is about the course even
when the vectors doubt it.

A German question may also name a thing by a word of general English ("Cockpit", "Vagrant", "Caddy", "Raspberry"):
such a word is general language, so the rule above passes it. In a German question a word that is frequent in English,
at least as English as German and rare in German (Zipf below FOREIGN_ZIPF: "Server", "Browser" or "Computer" are
German by now) is a foreign word; when the course never uses it (not as a lexeme of its languages or of English,
not inside one of its words, not as one of its German synonyms: "Backup" is found as "Datensicherung") it is
unknown too. A misspelling does not count here: a general word is spelt right.

Three kinds of word are not names (branch answers9, after the blind fresh10/11 sets, where 6 of 7 false declines
were such words): a German verb with a separable particle ("mitinstalliert", "umbelegen": the particle before a
general word), a word inside a path or file name that the course writes inside one of its own ("bashrc" of
"~/.bashrc"), and a hyphenated name whose parts the course holds by their English stems or a spelling one edit away
("Git-Repositories" for "git-Repository", "Port-Knocking" for "Port-Knock-Daemon"). Over all question sets of
tests/data, 5 answerable questions fewer had an unknown word (9 -> 4 of 419); every unanswerable one that had one
still has one (115 of 265).

Measured with bench/bench_answerability.py (--only evidence, e5-small): see README, "Answerability".
"""

import functools
import re
from dataclasses import dataclass

from django.db import connection
from wordfreq import zipf_frequency

from courses.language import SEPARABLE_PARTICLES, detect_language
from courses.retrieval import course_setup, ts_config
from courses.synonyms import synonyms

GENERAL_ZIPF = 2.5  # a word at least this frequent (Zipf scale: 3 is once per million words) is general language
COMPOUND_PART = 5  # the shortest part of a compound of the course's words
NEAR_LENGTH = 5  # a misspelling is near a course word of at least this many letters: "htop" is no "top" misspelt
MIN_LENGTH = 4  # shorter words are not judged ("VPN", "zsh" are names too, but short ones collide too easily)
_ENDINGS = ("ern", "eln", "est", "en", "er", "es", "em", "et", "te", "st", "e", "t", "n", "s")
_WORD = re.compile(r"[^\W\d_]{" + str(MIN_LENGTH) + ",}")
_HYPHENATED = re.compile(r"(?<![\w-])[^\W\d_]+(?:-[^\W\d_]+)+(?![\w-])")
ENGLISH_MARGIN = 0.5  # a part is English, or German, when its Zipf frequency there is this much higher
FOREIGN_ZIPF = 4.0  # an English word this frequent in German is German by now ("Server", "System", "Computer")

# for each of the question's words (and hyphenated words' parts): whether a lexeme of the course is the word's
# own, and whether one lies within an edit or two of it (a misspelling)
WORDS_SQL = """
SELECT w.word,
       EXISTS (SELECT 1 FROM unnest(%(configs)s::regconfig[]) AS config,
                             unnest(tsvector_to_array(to_tsvector(config, w.word))) AS l(lexeme)
               JOIN courses_courseterm t ON t.course_id = %(course)s::bigint AND t.lexeme = l.lexeme),
       EXISTS (SELECT 1 FROM courses_courseterm t
               WHERE t.course_id = %(course)s::bigint AND abs(length(t.lexeme) - length(w.word)) <= 2
                 AND length(t.lexeme) >= %(near)s
                 AND levenshtein_less_equal(t.lexeme, w.word, 2) <= CASE WHEN length(w.word) >= 8 THEN 2 ELSE 1 END)
FROM unnest(%(words)s::text[]) AS w(word)
"""

# for each hyphenated name of the question: whether the course holds it whole (the lexeme of the hyphenated
# word, "pi-hol", or the name written as one word), or each of its parts ("sticky (klebrig)-Bit" for "sticky-Bit")
HYPHENATED_SQL = """
SELECT w.word,
       EXISTS (SELECT 1 FROM unnest(%(configs)s::regconfig[]) AS config,
                             unnest(tsvector_to_array(to_tsvector(config, w.word))) AS l(lexeme)
               JOIN courses_courseterm t ON t.course_id = %(course)s::bigint AND t.lexeme = l.lexeme
               WHERE position('-' in l.lexeme) > 0 OR l.lexeme = replace(w.word, '-', ''))
       OR NOT EXISTS (SELECT 1 FROM unnest(string_to_array(w.word, '-')) AS part
                      WHERE NOT EXISTS (SELECT 1 FROM unnest(%(configs)s::regconfig[] || 'english'::regconfig)
                                                      AS config,
                                             unnest(tsvector_to_array(to_tsvector(config, part))) AS l(lexeme)
                                        JOIN courses_courseterm t ON t.course_id = %(course)s::bigint
                                         AND (t.lexeme = l.lexeme
                                              OR length(l.lexeme) >= %(near)s
                                                 AND abs(length(t.lexeme) - length(l.lexeme)) <= 1
                                                 AND levenshtein_less_equal(t.lexeme, l.lexeme, 1) <= 1)))
FROM unnest(%(words)s::text[]) AS w(word)
"""


# for each English word of a German question: whether the course uses it, as a lexeme of one of its languages or
# of English ("Pipes" is the German "pip" of "Pipe", the English "pipe"), or inside one of its lexemes
# ("Tastaturlayout", "system-backup" for "layout", "backup")
FOREIGN_SQL = """
SELECT w.word,
       EXISTS (SELECT 1 FROM courses_courseterm t
               WHERE t.course_id = %(course)s::bigint
                 AND (t.lexeme IN (SELECT l FROM unnest(%(configs)s::regconfig[] || 'english'::regconfig) AS config,
                                                 unnest(tsvector_to_array(to_tsvector(config, w.word))) AS l)
                      OR position(w.word in t.lexeme) > 0))
FROM unnest(%(words)s::text[]) AS w(word)
"""

# which of the pieces some lexeme of the course holds
KNOWN_PIECES_SQL = """
SELECT DISTINCT piece
FROM unnest(%(pieces)s::text[]) AS piece, unnest(%(configs)s::regconfig[]) AS config,
     unnest(tsvector_to_array(to_tsvector(config, piece))) AS l(lexeme)
JOIN courses_courseterm t ON t.course_id = %(course)s::bigint AND t.lexeme = l.lexeme
"""


def _frequency(word):
    return max(zipf_frequency(word, "de"), zipf_frequency(word, "en"))


def _forms(word):
    """The word and what it may be inflected from: without "un-", without an ending, with an infinitive's."""
    forms = {word}
    if word.startswith("un") and len(word) > 6:
        forms.add(word[2:])
    for form in list(forms):
        for ending in _ENDINGS:
            if form.endswith(ending) and len(form) - len(ending) >= 3:
                stem = form[:-len(ending)]
                forms |= {stem, stem + "en", stem + "n", stem + "t"}
                if stem.endswith(("l", "r")):  # "verwandle" ← "verwandeln", "wandre" ← "wandern"
                    forms.add(stem[:-1] + "e" + stem[-1] + "n")
    return forms


@functools.lru_cache(maxsize=20000)
def general_word(word):
    """Whether a (lower-case) word belongs to general German or English: frequent itself or in an inflected
    form, or a German compound of two frequent parts (one of them more German than English, so that
    "wireguard" or "nextcloud" are not taken for compounds)."""
    word = word.lower()
    if any(_frequency(form) >= GENERAL_ZIPF for form in _forms(word)):
        return True
    for particle in sorted(SEPARABLE_PARTICLES, key=len, reverse=True):  # "mitinstalliert", "umbelegen"
        rest = word[len(particle):]
        if word.startswith(particle) and len(rest) >= 5 and any(
                zipf_frequency(form, "de") >= GENERAL_ZIPF for form in _forms(rest) | _forms(rest.removeprefix("ge"))):
            return True
    for cut in range(4, len(word) - 3):
        head, tail = word[:cut], word[cut:]
        heads = [h for h in {head, head[:-1] if head.endswith("s") else head} if zipf_frequency(h, "de") >= GENERAL_ZIPF]
        tails = [t for t in _forms(tail) if zipf_frequency(t, "de") >= GENERAL_ZIPF]
        if heads and tails and any(zipf_frequency(p, "de") > zipf_frequency(p, "en") + 0.5 for p in heads + tails):
            return True
    return False


def question_words(question):
    """The question's words to judge, lower-case, each once: its words and the parts of hyphenated ones."""
    words = []
    for word in _WORD.findall(question.replace("-", " ")):
        word = word.lower()
        if word not in words:
            words.append(word)
    return words


_CODE_TOKEN = re.compile(r"\S*(?:/|\w\.\w)\S*")  # a path or a file name: "~/.bashrc", "/etc/nala.conf", "mc.sh"


def path_words(question):
    """The words of the question that stand inside a path or a file name (lower-case)."""
    return {w.lower() for token in _CODE_TOKEN.findall(question) for w in _WORD.findall(token.replace("-", " "))}


def english_names(question):
    """The question's hyphenated names made of English words ("Pi-hole", "Home-Assistant"), lower-case: every
    part a word of the general language, none more German than English and one clearly English, and the parts
    written as one word no general word. Their parts are general words, so only the whole names the thing;
    "Home-Verzeichnis" or "USB-Stick" in a German question are German compounds, judged by their parts."""
    found = []
    for match in _HYPHENATED.findall(question):
        word = match.lower()
        parts = word.split("-")
        english = [zipf_frequency(p, "en") for p in parts]
        german = [zipf_frequency(p, "de") for p in parts]
        if (all(max(e, g) >= GENERAL_ZIPF for e, g in zip(english, german, strict=True))
                and not any(g > e + ENGLISH_MARGIN for e, g in zip(english, german, strict=True))
                and any(e > g + ENGLISH_MARGIN for e, g in zip(english, german, strict=True))
                and not general_word("".join(parts)) and word not in found):
            found.append(word)
    return found


def foreign_words(question):
    """The words of a German question that are English rather than German ("Cockpit", "Vagrant", "Theme"),
    lower-case: frequent in English, at least as frequent there as in German (itself or any German form it may be
    inflected from: "plane" is "planen", "Theme" may be "Themen") and rare in German. Such a word in a German
    question names a thing (a program, a place) rather than saying something in German. Empty for a question that
    is not German."""
    if detect_language(question, default="") != "de":
        return []
    found = []
    for word in question_words(question):
        english, german = zipf_frequency(word, "en"), max(zipf_frequency(f, "de") for f in _forms(word))
        if english >= GENERAL_ZIPF and german < FOREIGN_ZIPF and english >= german - ENGLISH_MARGIN:
            found.append(word)
    return found


@dataclass(frozen=True)
class Names:
    """The question's words that are no general German or English word: ``unknown`` the course never uses (not
    even misspelt, nor as a compound of its words), ``named`` the course uses word for word ("etckeeper")."""

    unknown: tuple = ()
    named: tuple = ()


def names(course_id, question, configs=None):
    """The Names of a question in this course, in the question's order. configs: the text search configurations
    of the course's languages (by default those of its active index; a course not indexed yet knows no word)."""
    words = question_words(question)
    candidates = [w for w in words if not general_word(w)]
    hyphenated = english_names(question)
    parts = {p for name in hyphenated for p in name.split("-")}  # judged whole, as the name
    foreign = [w for w in foreign_words(question) if w not in candidates and w not in parts]
    if not candidates and not hyphenated and not foreign:
        return Names()
    if configs is None:
        setup = course_setup(int(course_id))
        if setup is None:
            return Names()
        configs = [ts_config(code) for code in setup[2]]
    alternatives = {w: synonyms(w) for w in foreign}
    with connection.cursor() as cursor:
        cursor.execute(WORDS_SQL, {"words": candidates, "configs": configs, "course": int(course_id),
                                   "near": NEAR_LENGTH})
        found = {word: (own, near) for word, own, near in cursor.fetchall()}
        whole = {}
        if hyphenated:
            cursor.execute(HYPHENATED_SQL, {"words": hyphenated, "configs": configs, "course": int(course_id),
                                            "near": NEAR_LENGTH})
            whole = dict(cursor.fetchall())
        used = {}
        if foreign:
            cursor.execute(FOREIGN_SQL, {"words": foreign, "configs": configs, "course": int(course_id)})
            used = dict(cursor.fetchall())
        absent = [w for w in candidates if not any(found[w])]
        splits = {w: _splits(w) for w in absent}
        pieces = {p for pairs in splits.values() for pair in pairs for p in pair}
        pieces |= {s for w in foreign if not used[w] for s in alternatives[w]}
        in_course = set()
        if pieces:
            cursor.execute(KNOWN_PIECES_SQL, {"pieces": sorted(pieces), "configs": configs, "course": int(course_id)})
            in_course = {row[0] for row in cursor.fetchall()}
        inside_paths = path_words(question)
        in_paths = [w for w in absent if w in inside_paths]
        inside = {}
        if in_paths:  # "~/.bashrc": the course's lexeme is the path ("~/.bashrc", "/etc/skel/.bashrc"), not "bashrc"
            cursor.execute(FOREIGN_SQL, {"words": in_paths, "configs": configs, "course": int(course_id)})
            inside = dict(cursor.fetchall())
    unknown = {w for w in absent if not inside.get(w)
               and not any(_known_compound(head, tail, in_course) for head, tail in splits[w])}
    unknown |= {w for w in foreign if not used[w] and not any(s in in_course for s in alternatives[w])}
    unknown = [w for w in hyphenated if not whole[w]] + [w for w in words if w in unknown]
    return Names(unknown=tuple(unknown), named=tuple(w for w in candidates if found[w][0]))


def unknown_words(course_id, question, configs=None):
    """The words of the question that the course never uses and that are no general German or English word."""
    return list(names(course_id, question, configs).unknown)


def _splits(word):
    """The ways to cut a word into two parts of at least COMPOUND_PART letters (the head also without a linking
    "s")."""
    pairs = []
    for cut in range(COMPOUND_PART, len(word) - COMPOUND_PART + 1):
        head, tail = word[:cut], word[cut:]
        pairs.append((head, tail))
        if head.endswith("s") and len(head) > COMPOUND_PART:
            pairs.append((head[:-1], tail))
    return pairs


def _known_compound(head, tail, in_course):
    """Whether head + tail is a compound of two words of the course ("Tabulator" + "Zeichen", "Binär" +
    "Paketdateien"). Parts of five letters at least: "tail" + "scale" or "wire" + "guard" are names."""
    return head in in_course and tail in in_course
