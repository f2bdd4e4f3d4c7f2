"""The demo course gets the shipped German texts once, however often it is ensured."""

from courses.demo import DEMO_DOCUMENTS, ensure_demo_course
from courses.models import Document


def test_ensure_demo_course_adds_the_shipped_texts_once(db, settings, tmp_path, django_capture_on_commit_callbacks,
                                                        monkeypatch):
    settings.MEDIA_ROOT = tmp_path / "media"
    queued = []
    monkeypatch.setattr("courses.tasks.ingest_document.apply_async", lambda args, **options: queued.append(args[0]))
    with django_capture_on_commit_callbacks(execute=True):
        course = ensure_demo_course()
        again = ensure_demo_course()
    assert again == course and course.language == "de"
    documents = Document.objects.filter(course=course)
    assert documents.count() == len(DEMO_DOCUMENTS) == 3
    assert sorted(queued) == sorted(documents.values_list("pk", flat=True))
    assert {d.kind for d in documents} == {"html", "pdf"}
