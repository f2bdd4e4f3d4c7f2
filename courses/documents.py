"""Adding, replacing, re-indexing and deleting course documents (the files are kept under MEDIA_ROOT)."""

import hashlib
import logging
import os

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from config.errors import ProblemError
from courses.models import Document
from courses.tasks import enqueue_ingestion, queue_positions

log = logging.getLogger(__name__)

EXTENSIONS = {
    ".pdf": Document.PDF, ".docx": Document.DOCX, ".html": Document.HTML, ".htm": Document.HTML,
    ".md": Document.MARKDOWN, ".markdown": Document.MARKDOWN, ".txt": Document.TEXT,
}


class UploadError(ProblemError):
    """An upload that cannot be accepted; the message is meant for the lecturer."""


def kind_of(filename, data):
    """The document kind from the file name, checked against the content's first bytes."""
    extension = os.path.splitext(filename.lower())[1]
    kind = EXTENSIONS.get(extension)
    if kind is None:
        raise UploadError(_("Files of type “%(ext)s” are not supported. Please upload PDF, Word (.docx), HTML, "
                            "Markdown or plain text.") % {"ext": extension or filename})
    if kind == Document.PDF and not data[:1024].lstrip().startswith(b"%PDF"):
        raise UploadError(_("“%(name)s” is not a PDF file.") % {"name": filename})
    if kind == Document.DOCX and not data.startswith(b"PK"):
        raise UploadError(_("“%(name)s” is not a Word (.docx) file.") % {"name": filename})
    if kind in (Document.HTML, Document.MARKDOWN, Document.TEXT) and b"\x00" in data[:8192]:
        raise UploadError(_("“%(name)s” is not a text file.") % {"name": filename})
    return kind


def validate_upload(filename, data):
    """The kind of an acceptable upload; raises UploadError with a clear message otherwise."""
    if not data:
        raise UploadError(_("The file “%(name)s” is empty.") % {"name": filename})
    limit = settings.MAX_UPLOAD_MB * 1024 * 1024
    if len(data) > limit:
        raise UploadError(_("The file “%(name)s” is larger than %(limit)d MB.") % {
            "name": filename, "limit": settings.MAX_UPLOAD_MB})
    return kind_of(filename, data)


def read_upload(upload):
    """(file name, content) of an uploaded file (a Django UploadedFile or None), refused with a clear message when
    missing or over MAX_UPLOAD_MB before it is read into memory."""
    if upload is None:
        raise UploadError(_("Please choose a file to upload."))
    if upload.size > settings.MAX_UPLOAD_MB * 1024 * 1024:
        raise UploadError(_("The file “%(name)s” is larger than %(limit)d MB.") % {
            "name": upload.name, "limit": settings.MAX_UPLOAD_MB})
    return upload.name, upload.read()


def _store_file(document, filename, data, sha):
    extension = os.path.splitext(filename.lower())[1]
    document.file.save(f"{document.course_id}/{sha}{extension}", ContentFile(data), save=False)


def add_document(course, filename, data, *, title=None, enqueue=True):
    """A new Document for the course (validated, stored, ingestion queued); the same content twice is one document.

    enqueue=False leaves the ingestion to the caller (management commands that ingest synchronously).
    """
    kind = validate_upload(filename, data)
    sha = hashlib.sha256(data).hexdigest()
    with transaction.atomic():
        existing = Document.objects.filter(course=course, sha256=sha).first()
        if existing is not None:
            return existing
        document = Document(course=course, title=(title or os.path.splitext(os.path.basename(filename))[0])[:255],
                            filename=os.path.basename(filename)[:255], sha256=sha, kind=kind, size=len(data))
        _store_file(document, filename, data, sha)
        document.save()
        if enqueue:
            enqueue_ingestion(document.pk)
    log.info("course %s: document %s added (%s, %d bytes)", course.pk, document.pk, filename, len(data))
    return document


def replace_document(document, filename, data):
    """New content for an existing document; its chunks are replaced when the new content is indexed."""
    kind = validate_upload(filename, data)
    sha = hashlib.sha256(data).hexdigest()
    if sha == document.sha256:
        return document
    old_file = document.file.name
    with transaction.atomic():
        document.kind, document.sha256, document.size = kind, sha, len(data)
        document.filename = os.path.basename(filename)[:255]
        document.status, document.error_code, document.error_detail = Document.QUEUED, "", ""
        document.pages_done = document.chunks_done = 0
        _store_file(document, filename, data, sha)
        document.save()
        enqueue_ingestion(document.pk)
    if old_file and old_file != document.file.name:
        document.file.storage.delete(old_file)
    return document


def reindex_document(document):
    """Queue the document's ingestion again (e.g. after a failure); unchanged content is skipped by the task."""
    Document.objects.filter(pk=document.pk).update(status=Document.QUEUED, indexed_sha256="", error_code="")
    enqueue_ingestion(document.pk)


def delete_document(document):
    """Delete a document with its sections, chunks and stored file."""
    from courses.ingest import refresh_course_terms

    name, storage = document.file.name, document.file.storage
    course_id = document.course_id
    document.delete()
    refresh_course_terms(course_id)
    if name and not Document.objects.filter(file=name).exists():
        storage.delete(name)


def status_text(document, ahead=None):
    """The document's state for the lecturer; a queued one says how many documents are indexed before it."""
    if document.status == Document.QUEUED and ahead:
        return ngettext("Waiting: %(count)d document is indexed before this one",
                        "Waiting: %(count)d documents are indexed before this one", ahead) % {"count": ahead}
    return str(document.get_status_display())


def with_status(documents):
    """The documents (a list) with their state for the lecturer: ``.ahead`` (documents indexed before a queued
    one, else None) and ``.status_text``; what the documents page and the API show."""
    ahead = queue_positions(documents)
    for document in documents:
        document.ahead = ahead.get(document.pk)
        document.status_text = status_text(document, document.ahead)
    return documents
