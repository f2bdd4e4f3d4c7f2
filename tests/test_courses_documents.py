"""Adding course documents: type and size limits with clear errors, one document per content."""

from pathlib import Path

import pytest

from courses.documents import UploadError, add_document, delete_document, replace_document
from courses.models import Course, Document

CORPUS = Path(__file__).resolve().parent.parent / "deploy" / "demo_corpus" / "debian-reference-de"


def test_add_document_stores_the_file_and_queues_it(course):
    data = (CORPUS / "ch03.de.html").read_bytes()
    document = add_document(course, "ch03.de.html", data, title="Kapitel 3")
    assert document.status == Document.QUEUED and document.kind == "html" and document.title == "Kapitel 3"
    assert Path(document.file.path).read_bytes() == data
    assert add_document(course, "copy.html", data) == document  # same content: same document
    other = Course.objects.create(title="Anderer Kurs")
    assert add_document(other, "ch03.de.html", data).pk != document.pk


def test_unsupported_types_and_disguised_files_are_refused(course):
    with pytest.raises(UploadError, match="not supported"):
        add_document(course, "virus.exe", b"MZ...")
    with pytest.raises(UploadError, match="is not a PDF"):
        add_document(course, "fake.pdf", b"<html>no pdf</html>")
    with pytest.raises(UploadError, match="empty"):
        add_document(course, "empty.txt", b"")
    assert not Document.objects.exists()


def test_files_over_the_size_limit_are_refused(course, settings):
    settings.MAX_UPLOAD_MB = 1
    with pytest.raises(UploadError, match="larger than 1 MB"):
        add_document(course, "big.txt", b"a" * (1024 * 1024 + 1))


def test_replace_and_delete(course):
    document = add_document(course, "notes.md", b"# Titel\n\nErster Stand.")
    old_path = Path(document.file.path)
    replace_document(document, "notes.md", b"# Titel\n\nZweiter Stand.")
    document.refresh_from_db()
    assert Path(document.file.path).read_bytes().endswith(b"Zweiter Stand.") and not old_path.exists()
    delete_document(document)
    assert not Document.objects.exists() and not Path(document.file.path).exists()
