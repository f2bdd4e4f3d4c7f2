"""What the evaluation commands share: a labelled question set, and a throwaway course that holds a folder's texts."""

import json
import time
from contextlib import contextmanager
from pathlib import Path

from django.core.management.base import CommandError

from courses.documents import EXTENSIONS, UploadError, add_document, delete_document
from courses.ingest import ingest_document
from courses.models import Course, Document


def load_questions(path, *, answers=True):
    """Questions from a JSON-lines file: (question, [answer strings]) from {"q": "...", "any": [...]} lines, or
    with answers=False (question, line as a dict) from {"q": "..."} lines (other keys are kept, e.g. "kind")."""
    questions = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            questions.append((str(item["q"]), list(item["any"]) if answers else item))
        except (ValueError, KeyError, TypeError) as exc:
            shape = '{"q": …, "any": […]}' if answers else '{"q": …}'
            raise CommandError(f"{path}:{number}: not a {shape} line ({exc})") from exc
    if not questions:
        raise CommandError(f"{path} holds no questions")
    return questions


@contextmanager
def throwaway_course(docs, *, title, language=None, model=None, log=print):
    """A new course holding every course text of the folder docs, indexed with the embedding model (default:
    settings.EMBEDDING_MODEL); deleted with its documents afterwards, whatever happens."""
    folder = Path(docs)
    if not folder.is_dir():
        raise CommandError(f"--docs {docs}: not a folder")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in EXTENSIONS)
    if not files:
        raise CommandError(f"--docs {docs}: no PDF, DOCX, HTML, Markdown or text files")
    course = Course.objects.create(title=f"{title} {time.strftime('%Y-%m-%d %H:%M:%S')}", language=language or "de")
    try:
        for path in files:
            started = time.monotonic()
            try:
                document = add_document(course, path.name, path.read_bytes(), enqueue=False)
            except UploadError as exc:
                raise CommandError(f"{path}: {exc}") from exc
            result = ingest_document(document.pk, model=model)
            document.refresh_from_db()
            if result != "ready":
                raise CommandError(f"{path}: ingestion {result}: {document.error_message} {document.error_detail}")
            log(f"ingested {path.name}: {document.pages_total} pages, {document.chunks_total} chunks in "
                f"{time.monotonic() - started:.1f} s")
        course.documents_count = len(files)
        yield course
    finally:
        for document in Document.objects.filter(course=course):
            delete_document(document)
        course.delete()
