"""The demo course built from the texts the repo ships (deploy/demo_corpus)."""

from courses.models import Course

DEMO_TITLE = "Debian-Referenz (Demo)"


def ensure_demo_course():
    """The demo course, created once; its documents are added by the courses app's ingestion."""
    course, _ = Course.objects.get_or_create(title=DEMO_TITLE, defaults={"language": "de"})
    return course
