"""German synonyms for the full-text half of a search, from an open word list installed as a package.

The list is OpenThesaurus (LGPL-2.1, www.openthesaurus.de) in its plain-text form, one synonym set a line
separated by ";", as Debian's package ``openthesaurus-de-text`` installs it (settings.SYNONYMS_FILE). Nothing is
downloaded: without the file there are no synonyms, and the search works as before.

Only single words are kept (phrases and annotations such as "(ugs.)" are dropped); a question word the course
texts never use is searched by those of its synonyms that they do use (courses.retrieval).
"""

import functools
import logging
import re
from pathlib import Path

from django.conf import settings

log = logging.getLogger(__name__)

_ANNOTATION = re.compile(r"\([^)]*\)")
_WORD = re.compile(r"^[^\W\d_][\w-]*$")
MAX_SET_SIZE = 25  # larger sets are mostly loose associations ("machen"): left out


@functools.cache
def _thesaurus(path):
    """{word (lower-cased): frozenset of synonym set numbers}, [synonym sets as tuples of words]."""
    words, sets = {}, []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        log.info("no German synonym list at %s (%s): searching without synonyms", path, exc.__class__.__name__)
        return {}, []
    for line in lines:
        if not line or line.startswith("#"):
            continue
        members = []
        for entry in line.split(";"):
            entry = _ANNOTATION.sub("", entry).strip()
            if _WORD.match(entry) and entry.lower() not in members:
                members.append(entry.lower())
        if 2 <= len(members) <= MAX_SET_SIZE:
            number = len(sets)
            sets.append(tuple(members))
            for member in members:
                words.setdefault(member, []).append(number)
    return words, sets


def synonyms(word):
    """The word's synonyms in the list (lower-case, the word itself left out); empty without a list."""
    path = settings.SYNONYMS_FILE
    if not path:
        return []
    words, sets = _thesaurus(path)
    found = []
    for number in words.get(word.lower(), ()):
        found.extend(w for w in sets[number] if w != word.lower() and w not in found)
    return found


def available():
    """Whether a synonym list is installed and readable."""
    return bool(settings.SYNONYMS_FILE) and bool(_thesaurus(settings.SYNONYMS_FILE)[0])
