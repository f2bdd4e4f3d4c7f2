"""Sections of a course's texts as other apps need them: the sections that hold indexed text, the ones a lecturer
picked, and one section's passages (tutor.questions writes its questions from them; only courses queries chunks and
sections)."""

from django.db.models import Q

from courses.models import Chunk, Section


def section_passages(section_id, course_id):
    """The indexed chunks of a section, in reading order."""
    return list(Chunk.objects.filter(course_id=course_id, section_id=section_id).select_related("section")
                .order_by("ordinal"))


def sections_with_text(course):
    """The course's sections that have indexed text, in document order."""
    return (Section.objects.filter(document__course=course, chunks__isnull=False)
            .select_related("document").distinct().order_by("document__title", "document_id", "order"))


def chosen_sections(course, section_ids=(), chapter_keys=(), document_ids=()):
    """The sections with text that the lecturer picked: single sections, whole chapters (a chapter's key,
    "<document id>:<first order>:<last order>", names the run of its sections) and whole documents."""
    query = Q(pk__in=[int(s) for s in section_ids if str(s).isdigit()])
    query |= Q(document_id__in=[int(d) for d in document_ids if str(d).isdigit()])
    for key in chapter_keys:
        parts = str(key).split(":")
        if len(parts) == 3 and all(p.isdigit() for p in parts):
            query |= Q(document_id=int(parts[0]), order__gte=int(parts[1]), order__lte=int(parts[2]))
    return list(sections_with_text(course).filter(query))
