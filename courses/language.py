"""Language: which language a text is in, its PostgreSQL text search configuration, stop words, and the German
query handling of the full-text search (question words, compound words, separable verbs)."""

import re

_STOPWORDS = {
    "de": set("der die das und ist nicht ein eine einer eines mit von den dem des zu im auf für sich auch "
              "werden wird sind oder wenn kann können sie es als bei nach aus wie über durch diese dieser".split()),
    "en": set("the and is are not a an of to in on for with this that be by as it or from can you your "
              "which will was were have has if at these those".split()),
}


def detect_language(text):
    """"de" or "en", by counting common function words (enough for course texts)."""
    words = re.findall(r"[a-zäöüß]+", text[:200000].lower())
    counts = {lang: sum(1 for w in words if w in stop) for lang, stop in _STOPWORDS.items()}
    return max(counts, key=counts.get) if any(counts.values()) else "en"


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


def compound_parts(cursor, course_id, text, configs):
    """Parts of the query's compound words, split where the course's own vocabulary says so.

    Koehn & Knight's frequency rule: a long word is split into two parts that both occur in the course's
    chunks when the geometric mean of their chunk counts beats the count of the whole word (0 if absent).
    """
    words = {w.lower() for w in re.findall(r"[^\W\d_]+", text) if len(w) >= COMPOUND_MIN_LENGTH}
    splits = {w: [(w[:i], w[i:]) for i in range(COMPOUND_MIN_PART, len(w) - COMPOUND_MIN_PART + 1)]
              for w in words}
    pieces = sorted(words | {part for pairs in splits.values() for pair in pairs for part in pair})
    if not pieces:
        return []
    cursor.execute(PIECE_COUNTS_SQL, {"pieces": pieces, "configs": configs, "course": course_id})
    counts = dict(cursor.fetchall())
    parts = []
    for word, pairs in splits.items():
        best, best_score = None, counts.get(word, 0)
        for head, tail in pairs:
            score = (counts.get(head, 0) * counts.get(tail, 0)) ** 0.5
            if score > best_score:
                best, best_score = (head, tail), score
        if best:
            parts.extend(best)
    return parts
