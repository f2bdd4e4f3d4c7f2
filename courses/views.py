"""Lecturer pages for course texts, and the reader view of one passage; the work is done in plain modules."""

from django.conf import settings
from django.contrib import messages
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from courses.access import course_member, tool_url
from courses.documents import (
    UploadError,
    add_document,
    delete_document,
    reindex_document,
    replace_document,
    status_text,
)
from courses.models import Chunk, Document
from courses.rendering import render_markdown
from courses.tasks import queue_positions


def _back(request, course_id):
    return redirect(tool_url("courses:documents", course_id, token=request.launch_token))


def _read_upload(request):
    upload = request.FILES.get("file")
    if upload is None:
        raise UploadError(_("Please choose a file to upload."))
    if upload.size > settings.MAX_UPLOAD_MB * 1024 * 1024:
        raise UploadError(_("The file “%(name)s” is larger than %(limit)d MB.") % {
            "name": upload.name, "limit": settings.MAX_UPLOAD_MB})
    return upload.name, upload.read()


@course_member(teaching=True)
def documents(request, course_id):
    """The course's texts with their indexing status; upload form (POST adds a document)."""
    if request.method == "POST":
        try:
            name, data = _read_upload(request)
            document = add_document(request.course, name, data, title=request.POST.get("title") or None)
            messages.success(request, _("“%(title)s” was added and is being indexed.") % {"title": document.title})
        except UploadError as exc:
            messages.error(request, str(exc))
        return _back(request, course_id)
    docs = list(Document.objects.filter(course_id=course_id))
    ahead = queue_positions(docs)
    for document in docs:
        document.status_text = status_text(document, ahead.get(document.pk))
    return render(request, "courses/documents.html", {"course": request.course, "documents": docs,
                                                     "max_mb": settings.MAX_UPLOAD_MB})


@course_member(teaching=True)
def documents_status(request, course_id):
    """JSON progress of every document of the course, polled by the documents page."""
    docs = list(Document.objects.filter(course_id=course_id))
    ahead = queue_positions(docs)
    rows = [{
        "id": d.pk, "status": d.status, "status_label": status_text(d, ahead.get(d.pk)), "ahead": ahead.get(d.pk),
        "percent": d.progress_percent, "pages_done": d.pages_done, "pages_total": d.pages_total,
        "chunks_done": d.chunks_done, "chunks_total": d.chunks_total, "error": d.error_message,
    } for d in docs]
    return JsonResponse({"documents": rows})


@require_POST
@course_member(teaching=True)
def replace(request, course_id, document_id):
    """New content for a document (POST with a file)."""
    document = get_object_or_404(Document, pk=document_id, course_id=course_id)
    try:
        name, data = _read_upload(request)
        replace_document(document, name, data)
        messages.success(request, _("“%(title)s” was replaced and is being indexed.") % {"title": document.title})
    except UploadError as exc:
        messages.error(request, str(exc))
    return _back(request, course_id)


@require_POST
@course_member(teaching=True)
def reindex(request, course_id, document_id):
    """Index a document again."""
    document = get_object_or_404(Document, pk=document_id, course_id=course_id)
    reindex_document(document)
    messages.success(request, _("“%(title)s” is being indexed again.") % {"title": document.title})
    return _back(request, course_id)


@require_POST
@course_member(teaching=True)
def delete(request, course_id, document_id):
    """Delete a document with its passages."""
    document = get_object_or_404(Document, pk=document_id, course_id=course_id)
    title = document.title
    delete_document(document)
    messages.success(request, _("“%(title)s” was deleted.") % {"title": title})
    return _back(request, course_id)


@course_member()
def passage(request, course_id, chunk_id):
    """One cited passage in its section, with document, section path and page."""
    chunk = (Chunk.objects.select_related("document", "section")
             .filter(pk=chunk_id, course_id=course_id).first())
    if chunk is None:
        raise Http404(_("This passage does not exist in this course."))
    neighbours = list(Chunk.objects.filter(section_id=chunk.section_id, course_id=course_id)
                      .order_by("ordinal").only("id", "text", "page", "ordinal")) if chunk.section_id else [chunk]
    if chunk.document.kind == Document.MARKDOWN:  # shown as the lecturer wrote it, not as its raw syntax
        chunk.html = render_markdown(chunk.text)
        for neighbour in neighbours:
            neighbour.html = chunk.html if neighbour.pk == chunk.pk else render_markdown(neighbour.text)
    return render(request, "courses/passage.html", {
        "course": request.course, "chunk": chunk, "neighbours": neighbours,
        "section_shown": chunk.section and chunk.section.path.strip() != chunk.document.title.strip(),
        "is_teaching": request.membership.is_teaching,
    })
