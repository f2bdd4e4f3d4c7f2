"""Lecturer pages for course texts and the course's API tokens, and the reader view of one passage; the work is done
in plain modules."""

import logging

from django.conf import settings
from django.contrib import messages
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from courses.access import course_member, issue_ticket, tool_url
from courses.documents import (
    UploadError,
    add_document,
    delete_document,
    read_upload,
    reindex_document,
    replace_document,
    with_status,
)
from courses.forms import ApiTokenForm
from courses.members import course_members
from courses.models import ApiToken, Document
from courses.rendering import (
    HIGHLIGHT_FIELD,
    highlight_range,
    marked_parts,
    render_markdown_marked,
    render_passage,
)
from courses.retrieval import read_passage
from courses.sessions import renew_session

log = logging.getLogger(__name__)


def _back(request, course_id):
    return redirect(tool_url("courses:documents", course_id))


@course_member(teaching=True)
def documents(request, course_id):
    """The course's texts with their indexing status; upload form (POST adds a document)."""
    if request.method == "POST":
        try:
            name, data = read_upload(request.FILES.get("file"))
            document = add_document(request.course, name, data, title=request.POST.get("title") or None)
            messages.success(request, _("“%(title)s” was added and is being indexed.") % {"title": document.title})
        except UploadError as exc:
            messages.error(request, str(exc))
        return _back(request, course_id)
    docs = with_status(list(Document.objects.filter(course_id=course_id)))
    return render(request, "courses/documents.html", {"course": request.course, "documents": docs,
                                                     "max_mb": settings.MAX_UPLOAD_MB})


@require_POST
@course_member(teaching=True)
def replace(request, course_id, document_id):
    """New content for a document (POST with a file)."""
    document = get_object_or_404(Document, pk=document_id, course_id=course_id)
    try:
        name, data = read_upload(request.FILES.get("file"))
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
    """One cited passage in its section, with document, section path and page; a quoted sentence (``?hl=start-end``,
    its characters in the passage) highlighted."""
    found = read_passage(course_id, chunk_id)
    if found is None:
        raise Http404(_("This passage does not exist in this course."))
    chunk, neighbours = found
    span = highlight_range(request.GET.get(HIGHLIGHT_FIELD), len(chunk.text))
    if chunk.document.kind == Document.MARKDOWN:  # shown as the lecturer wrote it, not as its raw syntax
        chunk.html = render_passage(chunk.text)
        for neighbour in neighbours:
            neighbour.html = chunk.html if neighbour.pk == chunk.pk else render_passage(neighbour.text)
        if span:
            chunk.html = render_markdown_marked(chunk.text, span)
    elif span:
        chunk.before, chunk.marked, chunk.after = marked_parts(chunk.text, span)
    return render(request, "courses/passage.html", {
        "course": request.course, "chunk": chunk, "neighbours": neighbours,
        "section_shown": chunk.section and chunk.section.path.strip() != chunk.document.title.strip(),
        "is_teaching": request.membership.is_teaching,
    })


@never_cache
@course_member(teaching=True)
def members(request, course_id):
    """The course's people for its lecturers: role, last activity, names only where the LMS shares them."""
    from lti.tasks import roster_synced_at

    return render(request, "courses/members.html", {
        "course": request.course, "members": course_members(request.course),
        "synced_at": roster_synced_at(request.course)})


@require_POST
@course_member(teaching=True)
def sync_members(request, course_id):
    """Queue a roster sync from the LMS now (NRPS, on the "lti" queue), instead of after the day's first launch."""
    from lti.tasks import sync_roster_now

    if sync_roster_now(request.course):
        messages.success(request, _("The member list is being fetched from the learning platform; reload this "
                                    "page in a moment."))
    else:
        messages.error(request, _("The learning platform has not offered its member list for this course (LTI "
                                  "Names and Role Provisioning): switch the service on in the tool's settings "
                                  "in Moodle, then open the tool from the course once."))
    return redirect(tool_url("courses:members", course_id))


@never_cache
@course_member(teaching=True)
def api_tokens(request, course_id):
    """The course's API tokens (scope, expiry, last use) and the form for a new one (POST: made, its secret shown in
    this response only, never stored)."""
    form, secret = ApiTokenForm(request.POST or None), None
    if request.method == "POST" and form.is_valid():
        token, secret = ApiToken.issue(request.user, course=request.course, **form.cleaned_data)
        log.info("course %s: API token %s (%s) made by user %s", course_id, token.pk, token.scope, request.user.pk)
        form = ApiTokenForm()
    return render(request, "courses/api_tokens.html", {
        "course": request.course, "form": form, "secret": secret,
        "tokens": ApiToken.objects.filter(course=request.course).select_related("user")})


@require_POST
@course_member(teaching=True)
def revoke_api_token(request, course_id, token_id):
    """Revoke one of the course's API tokens, at once and for good."""
    token = get_object_or_404(ApiToken, pk=token_id, course_id=course_id)
    token.revoke()
    log.info("course %s: API token %s revoked by user %s", course_id, token.pk, request.user.pk)
    messages.success(request, _("The token “%(name)s” was revoked.") % {"name": token.name})
    return redirect(tool_url("courses:api-tokens", course_id))


def _signed_in(request):
    return request.user.is_authenticated and request.session.session_key


@never_cache
@require_POST
def session_ticket(request):
    """A single-use ticket for the page's next address (a link followed in an LMS frame that keeps no cookie);
    the page's script asks with its session in the header, and puts only the ticket into the URL."""
    if not _signed_in(request):
        return JsonResponse({"error": _("Please open this tool from your course in the learning platform.")},
                            status=401)
    return JsonResponse({"ticket": issue_ticket(request.session.session_key)})


@never_cache
@require_POST
def session_renew(request):
    """The explicit renewal of the session (the pages call it while the person works): SESSION_HOURS from now."""
    if not _signed_in(request):
        return JsonResponse({"error": _("Please open this tool from your course in the learning platform.")},
                            status=401)
    return JsonResponse({"expires": renew_session(request.session).isoformat()})
