"""Language: which language a text is in, its PostgreSQL text search configuration, stop words, and the German
query handling of the full-text search (question words, compound words, separable verbs)."""

import re
from dataclasses import dataclass

_STOPWORDS = {
    "de": set("der die das und ist nicht ein eine einer eines mit von den dem des zu im auf für sich auch "
              "werden wird sind oder wenn kann können sie es als bei nach aus wie über durch diese dieser".split()),
    "en": set("the and is are not a an of to in on for with this that be by as it or from can you your "
              "which will was were have has if at these those".split()),
}
# Words that say a short text's language (questions: "Was macht systemd?", "Wie starte ich neu?"): only words
# that are not also common in the other language ("was", "die", "also", "so", "man", "in" are in both)
_MARKERS = {
    "de": set("""
der das und ist nicht ein eine einen einem einer eines mit von den dem des zu zum zur im auf für sich auch
werden wird wurde sind oder wenn kann können sie es ich du wir ihr mein meine dein bei nach aus wie wo wer wen
wem wessen warum wieso weshalb wozu woran womit wofür worauf welche welcher welches welchen welchem wann über
durch diese dieser dieses gibt gib hat haben sein bitte noch schon dass nur mehr kein keine man muss soll darf
geht mache macht machen heißt bedeutet zeige erkläre unter ohne zwischen oder als um neu alle brauch brauche
befehl datei dateien anzeigen zeigen beenden einrichten ändern löschen finden starten messen meinem meinen meiner
deinem deinen statt anstatt anhand paket pakete dauert ewig freier freie altem alten privater anhang verhalten
gibts nen nem beim nimmt klappt komplett sperren wieder laut buch festplatte schnellere statische abschalten
zwei drei vier durchsuchen interaktiv
""".split()),
    "en": set("""
the and is are not an of to on for with this that be by it or from can you your which will were have has if at
these those what how why when where who whom whose does do did should could would shall my me there their
please explain show mean means without between
""".split()),
}
_GERMAN_LETTERS = re.compile("[äöüß]")
# Endings of German words that English words of six letters or more do not have ("meldungen", "geschwindigkeit",
# "grafisch", "ordentlich", "konfigurieren", "installierte"); "-strung" ("unstrung", "hamstrung") is the English exception
_GERMAN_ENDINGS = re.compile(r"^(?![a-z]*strung$)[a-zäöüß]{3,}(?:ungen|ung|keit|heit|lich|isch|ieren|iert|ierte|ierten)$")


def language_scores(text):
    """{"de": n, "en": n}: how many of the text's words (and German letters) speak for each language."""
    lowered = text[:200000].lower()
    words = re.findall(r"[a-zäöüß]+", lowered)
    scores = {lang: sum(1 for w in words if w in markers) for lang, markers in _MARKERS.items()}
    scores["de"] += sum(1 for w in words if w not in _MARKERS["de"] and _GERMAN_ENDINGS.match(w))
    scores["de"] += min(3, len(_GERMAN_LETTERS.findall(lowered)))
    return scores


def detect_language(text, default="en"):
    """"de" or "en" by the words (and letters) only one of the two uses; default when neither wins (too short or
    a tie): callers pass the course's or the page's language there."""
    scores = language_scores(text)
    if scores["de"] == scores["en"]:
        return default
    return max(scores, key=scores.get)


# --- Text search configurations ----------------------------------------------------------------------

TS_CONFIGS = {"de": "german", "en": "english"}


def ts_config(language):
    """The PostgreSQL text search configuration for a language code."""
    return TS_CONFIGS.get(language, "simple")


# Stop words of questions (both languages): left out of topics and of the words a passage must share with a question
STOPWORDS = set("""
der die das und ist nicht ein eine einer eines einem einen mit von den dem des zu im in auf für sich auch werden
wird sind oder wenn kann können sie es als bei nach aus wie was wer wo warum wann welche welcher welches über
durch diese dieser dieses ich du man mir mich mein gibt hat haben sein bitte noch schon dass nur mehr gut kein
the and is are not a an of to in on for with this that be by as it or from can you your which will was were
have has if at these those what how why when where who do does i me my about there
""".split())


# --- The full-text half of a search -------------------------------------------------------------------

# Question words and phrasing that every question shares; PostgreSQL's stop word lists keep some of them.
QUESTION_WORDS = set("""
warum wieso weshalb wozu woran womit wodurch worauf wofür wie welche welcher welches welchen welchem was wer wen
wem wo wohin woher kann könnte kannst muss soll sollte darf gibt es ich man mein meine meinen meiner mir mich
bekomme funktioniert eigentlich bitte
why how which what who whom where when can could should must do does did is are i my me there
""".split())


def keyword_text(query):
    """The query without question words, for the full-text half of the search."""
    words = re.findall(r"[\w./~-]+", query, re.UNICODE)
    kept = [w for w in words if w.lower() not in QUESTION_WORDS]
    return " ".join(kept) or query


# German separable verbs put their particle at the end of the clause: "Wie fahre ich das System herunter?"
# asks about "herunterfahren", which is the word the texts use ("Wie Sie das System herunterfahren"); the
# stemmer sees only "fahr" and "herunt". Particles (and the particle pairs "wieder her", "wieder auf"):
SEPARABLE_PARTICLES = set("""
ab an auf aus bei dar ein fest fort her herab heran herauf heraus herein herum herunter hervor hin hinab hinauf
hinaus hinein hinter hinunter hinzu hoch los mit nach nieder um vor voran voraus vorbei vorher weg weiter wieder
zu zurecht zurück zusammen
""".split())
VERB_ENDINGS = ("est", "et", "st", "en", "t", "e")


def separable_verbs(query):
    """The verbs a German query splits, joined again ("fahre … herunter" → "herunterfahren").

    A clause ending in one or two separable particles is joined with each of its other words (the finite
    verb is one of them; which one is not known without a parser), in the infinitive made by replacing the
    verb ending with "-en". Wrong pairs ("herunterdas") are harmless: the full-text half only uses terms
    that occur in the course's texts.
    """
    joined = []
    for clause in re.split(r"[?!.,;:]", query):
        words = re.findall(r"[^\W\d_]+", clause.lower())
        particles = []
        while words and words[-1] in SEPARABLE_PARTICLES and len(particles) < 2:
            particles.insert(0, words.pop())
        if not particles or not words:
            continue
        prefix = "".join(particles)
        for word in words:
            if len(word) < 3 or word in QUESTION_WORDS or word in SEPARABLE_PARTICLES:
                continue
            stem = next((word[:-len(e)] for e in VERB_ENDINGS if word.endswith(e) and len(word) - len(e) >= 2),
                        word)
            joined.append(prefix + stem + "en")
    return joined


COMPOUND_MIN_LENGTH = 10  # query words this long may be German compounds ("Spracheinstellungen")
COMPOUND_MIN_PART = 4

PIECE_COUNTS_SQL = """
SELECT piece, max(t.chunks)
FROM unnest(%(pieces)s::text[]) AS piece, unnest(%(configs)s::regconfig[]) AS config,
     unnest(tsvector_to_array(to_tsvector(config, piece))) AS l(lexeme)
JOIN courses_courseterm t ON t.course_id = %(course)s::bigint AND t.lexeme = l.lexeme
GROUP BY piece
"""


def query_words(query):
    """The question's content words for the full-text half (no question or stop words, at least 3 letters),
    in order, each once."""
    seen = []
    for word in re.findall(r"[^\W\d_][\w-]*[^\W_]|[^\W\d_]{3,}", keyword_text(query)):
        lowered = word.lower()
        if len(lowered) >= 3 and lowered not in STOPWORDS and lowered not in QUESTION_WORDS and lowered not in seen:
            seen.append(lowered)
    return seen


@dataclass
class QueryTerms:
    """What the full-text half searches besides the question's own words, and how each question word can be
    found in a passage: ``extra`` (compound parts, synonyms) and ``words`` [(word, forms it may take in a
    passage, in how many of the course's chunks the word itself occurs)]."""

    extra: list
    words: list


MAX_SYNONYMS = 3  # per question word the course texts never use


def expand_query(cursor, course_id, text, configs, *, with_synonyms=True):
    """The QueryTerms of a query in this course, from one lookup of the course's term counts.

    Compound words are split by Koehn & Knight's frequency rule: a long word becomes two parts that both occur in
    the course's chunks when the geometric mean of their chunk counts beats the count of the whole word (0 if
    absent). A word the course never uses (not even through its compound parts) is searched by up to
    MAX_SYNONYMS of its synonyms (courses.synonyms) that the course uses most.
    """
    from courses.synonyms import synonyms

    words = query_words(text)
    splits = {w: [(w[:i], w[i:]) for i in range(COMPOUND_MIN_PART, len(w) - COMPOUND_MIN_PART + 1)]
              for w in words if len(w) >= COMPOUND_MIN_LENGTH and "-" not in w}
    hyphenated = {w: [p for p in w.split("-") if len(p) >= 2] for w in words if "-" in w}
    alternatives = {w: synonyms(w) for w in words if len(w) >= 4} if with_synonyms else {}
    pieces = set(words) | {part for pairs in splits.values() for pair in pairs for part in pair}
    pieces |= {part for parts in hyphenated.values() for part in parts}
    pieces |= {s for found in alternatives.values() for s in found}
    if not pieces:
        return QueryTerms([], [])
    cursor.execute(PIECE_COUNTS_SQL, {"pieces": sorted(pieces), "configs": configs, "course": course_id})
    counts = dict(cursor.fetchall())
    extra, groups = [], []
    for word in words:
        forms = [word, *hyphenated.get(word, ())]
        best, best_score = None, counts.get(word, 0)
        for head, tail in splits.get(word, ()):
            score = (counts.get(head, 0) * counts.get(tail, 0)) ** 0.5
            if score > best_score:
                best, best_score = (head, tail), score
        if best:
            extra.extend(best)
            forms.extend(best)
        if not best_score and not any(counts.get(p) for p in hyphenated.get(word, ())):
            used = sorted((s for s in alternatives.get(word, ()) if counts.get(s)), key=lambda s: -counts[s])
            extra.extend(used[:MAX_SYNONYMS])
            forms.extend(used[:MAX_SYNONYMS])
        groups.append((word, forms, counts.get(word, 0)))
    return QueryTerms(extra, groups)



# --- Word stems of short texts (the sentences tutor.chat.quotes weighs) --------------------------------

LEXEMES_SQL = """
SELECT x.i, ARRAY(SELECT DISTINCT l FROM unnest(%(configs)s::regconfig[]) AS config,
                                       unnest(tsvector_to_array(to_tsvector(config, x.t))) AS l)
FROM unnest(%(texts)s::text[]) WITH ORDINALITY AS x(t, i)
ORDER BY x.i
"""


def lexemes(cursor, texts, configs):
    """The stems (PostgreSQL text search lexemes, in every given configuration) of each text, as sets, in one
    statement: the same stemmer as the course's full-text index, so a sentence and a question meet as they would
    in the search."""
    if not texts:
        return []
    cursor.execute(LEXEMES_SQL, {"texts": list(texts), "configs": list(configs)})
    return [set(row[1]) for row in cursor.fetchall()]
