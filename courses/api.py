"""The API of the courses app: courses, their texts (upload, progress, replace, re-index, delete), search and passages.

Thin views over the domain functions the pages use (courses.documents, courses.retrieval); who may do what is
courses.access's (CourseAccess, course_grant), errors, pages, ETags and the schema's shape are config.api's.
"""

import functools
import time

from django.conf import settings
from django.db import transaction
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import exceptions, parsers, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import check_if_match, with_etag
from courses.access import LEVELS, READ, TEACH, course_grant, tool_url, visible_courses
from courses.documents import (
    add_document,
    delete_document,
    read_upload,
    reindex_document,
    replace_document,
    with_status,
)
from courses.models import Course, Document
from courses.retrieval import read_passage, retrieve

MAX_RESULTS = 20


def found(queryset, detail, **lookup):
    """The one object of queryset matching lookup, or a 404 problem with this detail (in the reader's language)."""
    obj = queryset.filter(**lookup).first()
    if obj is None:
        raise exceptions.NotFound(detail)
    return obj


# --- Courses ---------------------------------------------------------------------------------------------------

class CourseSerializer(serializers.ModelSerializer):
    """A course, and what the caller may do in it: read (chat, search), teach (also read what teachers see) or
    write (also change it)."""

    access = serializers.SerializerMethodField()

    class Meta:
        model = Course
        fields = ["id", "title", "language", "access"]

    @extend_schema_field(serializers.ChoiceField(choices=LEVELS))
    def get_access(self, course):
        request = self.context["request"]
        grant = getattr(request, "grant", None)
        if grant is None or grant.course.pk != course.pk:
            grant = course_grant(request.user, request.auth, course.pk)
        return grant.level if grant else READ


@extend_schema(tags=["courses"])
class CourseViewSet(viewsets.ReadOnlyModelViewSet):
    """The courses the caller may see: a course token's course, an admin token's all, a person's own."""

    serializer_class = CourseSerializer
    lookup_url_kwarg = "course_id"
    lookup_value_converter = "int"

    def get_queryset(self):
        return visible_courses(self.request.user, self.request.auth).order_by("title", "id")

    def get_object(self):
        return self.request.grant.course  # CourseAccess has found it (or answered 404)


# --- Course texts ----------------------------------------------------------------------------------------------

class DocumentSerializer(serializers.ModelSerializer):
    """A course text and its indexing: status, a label for people, place in the queue, progress and failure."""

    status_label = serializers.CharField(source="status_text", read_only=True)
    ahead = serializers.IntegerField(read_only=True, allow_null=True,
                                     help_text="Documents indexed before this queued one.")
    percent = serializers.IntegerField(source="progress_percent", read_only=True)
    error = serializers.CharField(source="error_message", read_only=True,
                                  help_text="Why indexing failed, in the reader's language.")

    class Meta:
        model = Document
        fields = ["id", "title", "filename", "kind", "size", "language", "status", "status_label", "ahead", "percent",
                  "pages_done", "pages_total", "chunks_done", "chunks_total", "error", "error_code", "created_at",
                  "updated_at", "indexed_at"]
        read_only_fields = fields


class DocumentUploadSerializer(serializers.Serializer):
    """A course text to add: PDF, Word (.docx), HTML, Markdown or plain text, up to MAX_UPLOAD_MB."""

    file = serializers.FileField()
    title = serializers.CharField(required=False, max_length=255, help_text="Default: the file's name.")


class DocumentReplaceSerializer(serializers.Serializer):
    """New content for a course text."""

    file = serializers.FileField()


def document_version(document):
    """What an ETag of a document stands for: its content and title (not its indexing progress)."""
    return [document.sha256, document.title, document.filename]


@extend_schema(tags=["documents"])
class DocumentViewSet(viewsets.GenericViewSet):
    """The course's texts: upload (multipart), indexing status with progress, replace, re-index, delete."""

    serializer_class = DocumentSerializer
    read_level = TEACH
    lookup_url_kwarg = "document_id"
    lookup_value_converter = "int"
    parser_classes = [parsers.MultiPartParser]

    def get_queryset(self):
        return Document.objects.filter(course_id=self.kwargs["course_id"])

    def get_object(self, queryset=None):
        return found(queryset if queryset is not None else self.get_queryset(),
                     _("This document does not exist in this course."), pk=self.kwargs["document_id"])

    def _response(self, document, **kwargs):
        return with_etag(Response(self.get_serializer(with_status([document])[0]).data, **kwargs),
                         document_version(document))

    def list(self, request, course_id):
        """The course's texts with their indexing status (what the documents page polls)."""
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(with_status(list(page)), many=True).data)

    @extend_schema(request=DocumentUploadSerializer, responses={201: DocumentSerializer})
    def create(self, request, course_id):
        """Add a text (multipart: file, optional title); it is indexed in the background (poll its status). The
        same content twice is one document."""
        name, data = read_upload(request.FILES.get("file"))
        document = add_document(request.grant.course, name, data, title=request.data.get("title") or None)
        location = reverse("api:course-documents-detail", args=[course_id, document.pk])
        return self._response(document, status=status.HTTP_201_CREATED, headers={"Location": location})

    def retrieve(self, request, course_id, document_id):
        """One text and its indexing status (ETag: its content and title)."""
        return self._response(self.get_object())

    @extend_schema(request=DocumentReplaceSerializer, parameters=[
        OpenApiParameter("If-Match", str, OpenApiParameter.HEADER, required=False,
                         description="The ETag the change is based on: 412 if the text was changed since.")])
    def update(self, request, course_id, document_id):
        """Replace a text's content (multipart: file); its passages are replaced once the new content is indexed."""
        with transaction.atomic():
            document = self.get_object(self.get_queryset().select_for_update())
            check_if_match(request, document_version(document))
            name, data = read_upload(request.FILES.get("file"))
            replace_document(document, name, data)
        return self._response(document)

    def destroy(self, request, course_id, document_id):
        """Delete a text with its passages."""
        delete_document(self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={202: DocumentSerializer})
    @action(detail=True, methods=["post"])
    def reindex(self, request, course_id, document_id):
        """Index a text again (e.g. after a failure)."""
        document = self.get_object()
        reindex_document(document)
        document.refresh_from_db()
        return self._response(document, status=status.HTTP_202_ACCEPTED)


# --- Search and passages -----------------------------------------------------------------------------------

class SearchQuerySerializer(serializers.Serializer):
    """A search: the query as a person types it, and how many passages to return."""

    q = serializers.CharField(max_length=2000, help_text="The query, e.g. a question.")
    k = serializers.IntegerField(min_value=1, max_value=MAX_RESULTS, default=5, help_text="Passages to return.")


class PassageSerializer(serializers.Serializer):
    """A passage of the course texts with its place (document, section, page) and how it is cited: ``url`` is the
    reader view (the page the chat's sources open), ``api_url`` this passage in the API."""

    chunk_id = serializers.IntegerField()
    document_id = serializers.IntegerField()
    document_title = serializers.CharField()
    section = serializers.CharField()
    page = serializers.IntegerField(allow_null=True)
    text = serializers.CharField()
    score = serializers.FloatField(required=False, help_text="Fused retrieval score; higher is better.")
    url = serializers.CharField()
    api_url = serializers.CharField()


class SearchResultSerializer(serializers.Serializer):
    """The best passages of the course's texts for a query, best first."""

    query = serializers.CharField()
    results = PassageSerializer(many=True)


def passage_links(course_id):
    """chunk id -> (url, api_url) of this course's passages, the chunk id put into the last path segment of links
    reversed once per course in this process (ten reverse() calls were ~0.5 ms of a search, the two of every search
    since then 0.15 ms); the URLs are the same for every request but for the script prefix and the URLconf."""
    prefixes = _link_prefixes(int(course_id), get_script_prefix(), get_urlconf() or settings.ROOT_URLCONF)
    return lambda chunk_id: tuple(f"{prefix}{int(chunk_id)}/" for prefix in prefixes)


@functools.lru_cache(maxsize=4096)
def _link_prefixes(course_id, script_prefix, urlconf):
    """The two passage links of a course without their chunk id (reversed under this script prefix and URLconf,
    which passage_links names so that the cache tells them apart)."""
    prefixes = []
    for link in (tool_url("courses:passage", course_id, 0), reverse("api:course-passage", args=[course_id, 0])):
        if not link.endswith("/0/"):  # the URL patterns end with <int:chunk_id>/
            raise ValueError(f"a passage's link must end with its chunk id, not {link!r}")
        prefixes.append(link[:-2])
    return tuple(prefixes)


def passage_data(course_id, chunk_id, document_id, title, section, page, text, score=None, links=None):
    """A passage as the API shows it, with the links that cite it (links: passage_links(course_id), for many)."""
    url, api_url = (links or passage_links(course_id))(chunk_id)
    data = {"chunk_id": chunk_id, "document_id": document_id, "document_title": title, "section": section or "",
            "page": page, "text": text, "url": url, "api_url": api_url}
    if score is not None:
        data["score"] = score
    return data


@extend_schema(tags=["search"])
class SearchView(APIView):
    """Search the course's texts: the passages the tutor would read for this query, with scores and citations."""

    @extend_schema(parameters=[SearchQuerySerializer], responses=SearchResultSerializer)
    def get(self, request, course_id):
        query = SearchQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        started = time.perf_counter()
        passages = retrieve(course_id, query.validated_data["q"], k=query.validated_data["k"])
        took = time.perf_counter() - started
        links = passage_links(course_id)
        response = Response({"query": query.validated_data["q"], "results": [
            passage_data(course_id, p.chunk_id, p.document_id, p.document_title, p.section_path, p.page, p.text,
                         score=p.score, links=links) for p in passages]})
        # the search's own time (W3C Server-Timing): a client, and bench/bench_api.py, tell it from the API's cost
        response["Server-Timing"] = f"retrieve;dur={1000 * took:.2f}"
        return response


class PassageDetailSerializer(PassageSerializer):
    """A passage with the whole section it stands in (its passages in order)."""

    section_text = serializers.ListField(child=serializers.CharField())


@extend_schema(tags=["search"])
class PassageView(APIView):
    """One passage of the course texts (a chat answer's source, a search result) with its section."""

    @extend_schema(responses=PassageDetailSerializer)
    def get(self, request, course_id, chunk_id):
        passage = read_passage(course_id, chunk_id)
        if passage is None:
            raise exceptions.NotFound(_("This passage does not exist in this course."))
        chunk, neighbours = passage
        data = passage_data(course_id, chunk.pk, chunk.document_id, chunk.document.title,
                            chunk.section.path if chunk.section else "", chunk.page, chunk.text)
        return Response(dict(data, section_text=[n.text for n in neighbours]))
