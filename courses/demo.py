"""The demo course built from the texts the repo ships (deploy/demo_corpus)."""

import logging
from pathlib import Path

from django.conf import settings

from courses.models import Course

log = logging.getLogger(__name__)

DEMO_TITLE = "Debian-Referenz (Demo)"
DEMO_CORPUS = Path(settings.BASE_DIR) / "deploy" / "demo_corpus" / "debian-reference-de"
# (file, title): the two HTML chapters index in seconds; the whole book as PDF follows.
DEMO_DOCUMENTS = [
    ("ch01.de.html", "Debian-Referenz, Kapitel 1: GNU/Linux-Lehrstunde"),
    ("ch03.de.html", "Debian-Referenz, Kapitel 3: Die Systeminitialisierung"),
    ("debian-reference.de.pdf", "Debian-Referenz (Buch, PDF)"),
]


def ensure_demo_course():
    """The demo course, created once, with the shipped German texts added and their ingestion queued."""
    from courses.documents import add_document

    course, _ = Course.objects.get_or_create(title=DEMO_TITLE, defaults={"language": "de"})
    for filename, title in DEMO_DOCUMENTS:
        path = DEMO_CORPUS / filename
        if not path.exists():
            log.warning("demo text %s is missing; the demo course goes without it", path)
            continue
        add_document(course, filename, path.read_bytes(), title=title)  # same content twice: same document
    return course
