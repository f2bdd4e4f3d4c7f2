"""German nouns' number and gender, so that a gap fill's wrong answers fit the gap's grammar: a distractor that does
not fit "Jede ___", "der ___, der" or "Alle Dateien und ___" gives the key away.

Number comes from the Hannover Tagger's German model (the ``hanta`` package ships it: lemma and inflection suffix
of a word, compounds split into their parts) checked against the course's own text; gender from the articles the
course writes before the compound's last part (its head: "Gerätedatei" is feminine because "Datei" is), and from
the head's ending where the course says nothing. ``readings(word, vocab)`` gives a noun's possible (gender,
number) pairs, ``gap_readings`` what the gap's article allows, and ``agrees`` whether a distractor fits.
"""

import functools
import re
import threading
from collections import Counter

SINGULAR, PLURAL, ANY = "sg", "pl", "*"
MASCULINE, FEMININE, NEUTER = "m", "f", "n"

# What an article or quantity word before a noun allows: (gender, number) pairs; ANY gender in the plural.
_ALLOWS = {
    "der": {(MASCULINE, SINGULAR), (FEMININE, SINGULAR), (ANY, PLURAL)},
    "die": {(FEMININE, SINGULAR), (ANY, PLURAL)},
    "das": {(NEUTER, SINGULAR)}, "ins": {(NEUTER, SINGULAR)},
    "den": {(MASCULINE, SINGULAR), (ANY, PLURAL)},
    "dem": {(MASCULINE, SINGULAR), (NEUTER, SINGULAR)}, "des": {(MASCULINE, SINGULAR), (NEUTER, SINGULAR)},
    "ein": {(MASCULINE, SINGULAR), (NEUTER, SINGULAR)}, "eine": {(FEMININE, SINGULAR)},
    "einen": {(MASCULINE, SINGULAR)}, "einem": {(MASCULINE, SINGULAR), (NEUTER, SINGULAR)},
    "einer": {(FEMININE, SINGULAR)}, "eines": {(MASCULINE, SINGULAR), (NEUTER, SINGULAR)},
    "kein": {(MASCULINE, SINGULAR), (NEUTER, SINGULAR)}, "keine": {(FEMININE, SINGULAR), (ANY, PLURAL)},
    "jede": {(FEMININE, SINGULAR)}, "jeder": {(MASCULINE, SINGULAR), (FEMININE, SINGULAR)},
    "jedes": {(NEUTER, SINGULAR), (MASCULINE, SINGULAR)}, "jeden": {(MASCULINE, SINGULAR)},
    "jedem": {(MASCULINE, SINGULAR), (NEUTER, SINGULAR)},
    "diese": {(FEMININE, SINGULAR), (ANY, PLURAL)}, "dieser": {(MASCULINE, SINGULAR), (FEMININE, SINGULAR)},
    "dieses": {(NEUTER, SINGULAR)}, "diesen": {(MASCULINE, SINGULAR), (ANY, PLURAL)},
    "diesem": {(MASCULINE, SINGULAR), (NEUTER, SINGULAR)},
    "im": {(MASCULINE, SINGULAR), (NEUTER, SINGULAR)}, "am": {(MASCULINE, SINGULAR), (NEUTER, SINGULAR)},
    "vom": {(MASCULINE, SINGULAR), (NEUTER, SINGULAR)}, "beim": {(MASCULINE, SINGULAR), (NEUTER, SINGULAR)},
    "zum": {(MASCULINE, SINGULAR), (NEUTER, SINGULAR)}, "zur": {(FEMININE, SINGULAR)},
}
for _plural in ("verschiedene verschiedenen mehrere mehreren einige einigen viele vielen alle allen beide beiden "
                "zwei drei vier solche solchen bestimmte bestimmten andere anderen weitere weiteren").split():
    _ALLOWS[_plural] = {(ANY, PLURAL)}

# Which articles before a singular noun say its gender (one vote each; "der", "dem", "ein" … leave two open).
_VOTES = {"die": (FEMININE,), "eine": (FEMININE,), "einer": (FEMININE,), "zur": (FEMININE,), "jede": (FEMININE,),
          "das": (NEUTER,), "ins": (NEUTER,), "dieses": (NEUTER,),
          "den": (MASCULINE,), "einen": (MASCULINE,), "jeden": (MASCULINE,),
          "der": (MASCULINE, FEMININE), "dem": (MASCULINE, NEUTER), "des": (MASCULINE, NEUTER),
          "ein": (MASCULINE, NEUTER), "einem": (MASCULINE, NEUTER), "eines": (MASCULINE, NEUTER),
          "im": (MASCULINE, NEUTER), "am": (MASCULINE, NEUTER), "vom": (MASCULINE, NEUTER),
          "beim": (MASCULINE, NEUTER), "zum": (MASCULINE, NEUTER)}
# Articles before a noun that say it is singular ("das", "dem", "der" also stand as relative pronouns: "bei dem
# Dateioperationen …" says nothing about the noun).
_SINGULAR_ONLY = {"ein", "eine", "einen", "einem", "eines", "jede", "jedes", "im", "am", "zum", "zur", "vom", "beim",
                  "ins"}
# Endings that say a noun's gender where the course's articles do not (German's regular cases).
_ENDINGS = ((FEMININE, ("ung", "heit", "keit", "schaft", "ion", "tät", "ik", "ei", "ie", "ur", "enz", "anz", "e")),
            (NEUTER, ("chen", "lein", "ment", "um", "nis", "tum", "ma")),
            (MASCULINE, ("ling", "ismus", "or", "eur", "ant", "ist", "us")))
_PLURAL_SUFFIXES = {"e", "en", "n", "er", "se", "ta", "nen"}
_EITHER = {"s", "es"}  # "des Befehls" or "die Sockets": genitive singular or plural, not told apart
_NOUN_TAGS = ("NN", "NN_VAR", "NE")

_tagger, _tagger_lock, _tagger_failed = None, threading.Lock(), False


def tagger():
    """The Hannover Tagger with its German model, loaded once per process; None when the package is missing."""
    global _tagger, _tagger_failed
    with _tagger_lock:
        if _tagger is None and not _tagger_failed:
            try:
                from HanTa import HanoverTagger
                _tagger = HanoverTagger.HanoverTagger("morphmodel_ger.pgz")
            except (ImportError, OSError):
                _tagger_failed = True
        return _tagger


@functools.lru_cache(maxsize=20000)
def _head_and_number(word):
    """(head, number) of a German noun: the singular stem of its last part (casefolded) and SINGULAR or PLURAL
    (NEUTER for a verb used as a noun, always neuter singular); (None, None) when not known to be a noun."""
    analyser = tagger()
    if analyser is None:
        return None, None
    last = word.rsplit("-", 1)[-1]
    if not last[:1].isupper() or len(last) < 3:
        return None, None
    _lemma, morphemes, pos = analyser.analyze(last, taglevel=3)
    if pos == "NNI":  # a verb used as a noun ("das Einbinden"): neuter singular
        return last.casefold(), NEUTER
    if pos not in ("NN", "NE"):
        return None, None
    suffix = morphemes[-1][0] if morphemes and morphemes[-1][1] == "SUF_NN" else ""
    stems = [m for m, tag in morphemes if tag in _NOUN_TAGS]
    head = (stems[-1] if stems else last).casefold()
    if suffix in _EITHER:
        return None, None
    return head, PLURAL if suffix in _PLURAL_SUFFIXES else SINGULAR


def head(word):
    """The singular stem of a noun's last part ("Alt-Taste", "Funktionstasten": "taste"), or None."""
    found, _number = _head_and_number(word)
    return found


def gender(head, vocab):
    """The gender of a noun whose last part is `head` (casefolded singular): the articles the course writes before
    its nouns ending in it, else its ending; None when neither says."""
    known = vocab.__dict__.setdefault("_genders", {})
    if head not in known:
        known[head] = _gender(head, vocab)
    return known[head]


def _gender(head, vocab):
    votes = Counter()
    for word, before in vocab.before.items():
        folded = word.casefold()
        if not folded.endswith(head) or not word[:1].isupper():
            continue
        for article, count in before.items():
            for which in _VOTES.get(article, ()):
                votes[which] += count / len(_VOTES[article])
    if votes:
        (first, top), *rest = votes.most_common()
        if top >= 1 and (not rest or top >= 2 * rest[0][1]):
            return first
    for which, endings in _ENDINGS:
        if head.endswith(endings):
            return which
    return None


def readings(word, vocab):
    """The (gender, number) pairs a noun form may have: {(gender, SINGULAR)} or {(ANY, PLURAL)} (both for a
    masculine or neuter noun in -er, -el, -en, whose plural is the same word); empty when unknown."""
    head, number = _head_and_number(word)
    if head is None:
        return set()
    if number == NEUTER:
        return {(NEUTER, SINGULAR)}
    seen_singular = any(vocab.before.get(word, {}).get(a) for a in _SINGULAR_ONLY)
    if number == PLURAL and not seen_singular:
        return {(ANY, PLURAL)}
    which = gender(head, vocab)
    if which is None:
        return set()
    found = {(which, SINGULAR)}
    if which in (MASCULINE, NEUTER) and re.search(r"(?:er|el|en)$", head):
        found.add((ANY, PLURAL))
    return found


def gap_readings(key, determiner, vocab):
    """What the gap allows: the key's readings narrowed by the article or quantity word before the gap."""
    own = readings(key, vocab)
    allowed = _ALLOWS.get(determiner)
    if allowed is None:
        return own
    narrowed = {r for r in own if r in allowed}
    return narrowed or own


def agrees(word, key, determiner, vocab):
    """Whether a German noun fits the gap the key fills: one of its readings is one the gap allows (same number,
    and same gender in the singular). Unknown words do not agree."""
    gap = gap_readings(key, determiner, vocab)
    return bool(gap) and bool(readings(word, vocab) & gap)
