"""Courses and who belongs to them. Documents, sections and chunks of the course texts live here too."""

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.postgres.search import SearchVectorField
from django.contrib.sessions.base_session import AbstractBaseSession
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from pgvector.django import VectorField


class Course(models.Model):
    """One course of the LMS (one LTI context); every text, chat and question belongs to exactly one."""

    title = models.CharField(_("title"), max_length=255)
    language = models.CharField(_("language of the course texts"), max_length=8, default="de")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("course")
        verbose_name_plural = _("courses")

    def __str__(self):
        return self.title


class MembershipQuerySet(models.QuerySet):
    """Memberships read as sentences: Membership.objects.teaching()."""

    def teaching(self):
        """Those who may set up the course tutor: instructors, teaching assistants, administrators."""
        return self.filter(role__in=Membership.TEACHING_ROLES)


class Membership(models.Model):
    """A person's role in a course, refreshed at every LTI launch."""

    INSTRUCTOR, TEACHING_ASSISTANT, ADMINISTRATOR, LEARNER = "instructor", "ta", "admin", "learner"
    ROLES = [
        (INSTRUCTOR, _("Instructor")),
        (TEACHING_ASSISTANT, _("Teaching assistant")),
        (ADMINISTRATOR, _("Administrator")),
        (LEARNER, _("Learner")),
    ]
    TEACHING_ROLES = (INSTRUCTOR, TEACHING_ASSISTANT, ADMINISTRATOR)

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=ROLES, default=LEARNER)
    updated_at = models.DateTimeField(auto_now=True)
    # the person's last launch into this course (a roster sync changes updated_at, not this)
    last_launch_at = models.DateTimeField(_("last launch"), null=True, blank=True)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["course", "user"], name="one_membership_per_course")]

    def __str__(self):
        return f"{self.user} in {self.course} as {self.role}"

    @property
    def is_teaching(self):
        """Whether this member may manage the course's texts and tutor."""
        return self.role in self.TEACHING_ROLES


# --- Course texts: documents, their sections, and the indexed chunks --------------------------------

class EmbeddingIndex(models.Model):
    """The vector space a course's chunks live in: one embedding model and its dimension.

    A course has one active index; changing the model creates a new index and re-ingests every
    document into it, so vectors of two models are never compared or mixed.
    """

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="embedding_indexes")
    model = models.CharField(_("embedding model"), max_length=200)
    dimension = models.PositiveIntegerField(_("dimension"))
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["course"], condition=models.Q(active=True),
                                    name="one_active_index_per_course"),
        ]

    def __str__(self):
        return f"{self.model} ({self.dimension}) for course {self.course_id}"


class DocumentQuerySet(models.QuerySet):
    """Documents read as sentences: Document.objects.ready()."""

    def ready(self):
        """Documents whose chunks are indexed and searchable."""
        return self.filter(status=Document.READY)

    def unfinished(self):
        """Documents waiting for or in the middle of their indexing."""
        return self.filter(status__in=[Document.QUEUED, Document.PARSING, Document.EMBEDDING])


class Document(models.Model):
    """One uploaded course text; the original file is kept so the index can be rebuilt."""

    PDF, DOCX, HTML, MARKDOWN, TEXT = "pdf", "docx", "html", "md", "txt"
    KINDS = [(PDF, "PDF"), (DOCX, "Word (DOCX)"), (HTML, "HTML"), (MARKDOWN, "Markdown"), (TEXT, _("Plain text"))]
    QUEUED, PARSING, EMBEDDING, READY, FAILED = "queued", "parsing", "embedding", "ready", "failed"
    STATUSES = [
        (QUEUED, _("Queued")),
        (PARSING, _("Reading the text")),
        (EMBEDDING, _("Indexing")),
        (READY, _("Ready")),
        (FAILED, _("Failed")),
    ]

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="documents")
    title = models.CharField(_("title"), max_length=255)
    file = models.FileField(_("file"), upload_to="courses/", max_length=500)
    filename = models.CharField(_("original file name"), max_length=255)
    sha256 = models.CharField(max_length=64, db_index=True)
    kind = models.CharField(max_length=8, choices=KINDS)
    size = models.PositiveBigIntegerField(default=0)
    language = models.CharField(_("language"), max_length=8, blank=True)
    status = models.CharField(max_length=16, choices=STATUSES, default=QUEUED)
    error_code = models.CharField(max_length=32, blank=True)
    error_detail = models.TextField(blank=True)
    pages_done = models.PositiveIntegerField(default=0)
    pages_total = models.PositiveIntegerField(default=0)
    chunks_done = models.PositiveIntegerField(default=0)
    chunks_total = models.PositiveIntegerField(default=0)
    index = models.ForeignKey(EmbeddingIndex, on_delete=models.SET_NULL, null=True, blank=True,
                              related_name="documents")
    indexed_sha256 = models.CharField(max_length=64, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True, help_text=_("When its indexing was last queued."))
    indexed_at = models.DateTimeField(null=True, blank=True, help_text=_("When its index was last completed."))
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = DocumentQuerySet.as_manager()

    class Meta:
        ordering = ["title", "id"]
        verbose_name = _("document")
        verbose_name_plural = _("documents")

    def __str__(self):
        return self.title

    @property
    def error_message(self):
        """The failure reason in the reader's language."""
        from config.errors import INGEST, error_message

        return error_message(INGEST, self.error_code) if self.status == self.FAILED else ""

    @property
    def progress_percent(self):
        """Rough progress of the ingestion, 0–100 (reading counts a third, indexing the rest)."""
        if self.status == self.READY:
            return 100
        parse = self.pages_done / self.pages_total if self.pages_total else 0
        embed = self.chunks_done / self.chunks_total if self.chunks_total else 0
        return int(100 * (parse / 3 + 2 * embed / 3))


class Section(models.Model):
    """A part of a document in its own structure (chapter, heading), with its page range."""

    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="sections")
    path = models.TextField(_("section path"))
    title = models.TextField(_("section title"))
    level = models.PositiveSmallIntegerField(default=1)
    order = models.PositiveIntegerField()
    page_start = models.PositiveIntegerField(null=True, blank=True)
    page_end = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["document", "order"]

    def __str__(self):
        return self.path


class Chunk(models.Model):
    """A searchable passage: text, its place in the source, its vector and its full-text vector."""

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="chunks")
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    section = models.ForeignKey(Section, on_delete=models.CASCADE, null=True, related_name="chunks")
    index = models.ForeignKey(EmbeddingIndex, on_delete=models.CASCADE, related_name="chunks")
    ordinal = models.PositiveIntegerField()
    text = models.TextField()
    page = models.PositiveIntegerField(null=True, blank=True)
    token_count = models.PositiveIntegerField(default=0)
    embedding = VectorField()
    dimension = models.PositiveSmallIntegerField(default=0)  # selects the partial HNSW index for this size
    search_vector = SearchVectorField(null=True)

    class Meta:
        ordering = ["document", "ordinal"]
        constraints = [models.UniqueConstraint(fields=["document", "ordinal"], name="one_chunk_per_position")]
        indexes = [
            models.Index(fields=["course", "index"], name="chunk_course_index"),
            # the full-text lookup uses a GIN index of "<course id> <lexeme>" terms (migration 0005, RunSQL)
        ]

    def __str__(self):
        return f"{self.document} #{self.ordinal}"


class CourseTerm(models.Model):
    """How many of a course's chunks contain a stemmed term: the idf of the full-text half of retrieval."""

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="terms")
    lexeme = models.TextField()
    chunks = models.PositiveIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["course", "lexeme"], name="one_count_per_course_term")]

    def __str__(self):
        return f"{self.lexeme} ({self.chunks} chunks of course {self.course_id})"


# --- API tokens: integrations outside the LMS (a portal chatbot, an upload script, analytics) ---------------

class ApiTokenQuerySet(models.QuerySet):
    """API tokens read as sentences: ApiToken.objects.filter(course=course).usable()."""

    def usable(self):
        """Tokens that are neither revoked nor expired."""
        return self.filter(revoked_at__isnull=True, expires_at__gt=timezone.now())


class ApiToken(models.Model):
    """A bearer secret for the API (``/api/v1/``): for one course, read or read and write, made by one of its
    teachers, or for every course, made by an admin. Only its SHA-256 digest is stored; the secret is shown once.

    It acts as its user (the conversations it starts are that person's); a course token works only while its
    user still teaches the course (courses.access decides).
    """

    READ, WRITE = "read", "write"
    SCOPES = [(READ, _("Read")), (WRITE, _("Read and write"))]
    PREFIX = "ctk_"

    name = models.CharField(_("name"), max_length=100)
    course = models.ForeignKey(Course, on_delete=models.CASCADE, null=True, blank=True, related_name="api_tokens",
                               help_text=_("Empty: every course (an admin's token)."))
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    scope = models.CharField(_("scope"), max_length=8, choices=SCOPES, default=READ)
    digest = models.CharField(max_length=64, unique=True)
    hint = models.CharField(_("begins with"), max_length=16)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    expires_at = models.DateTimeField(_("expires"))
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")

    def __str__(self):
        return f"{self.name} ({self.hint}…)"

    @property
    def rate_key(self):
        """Whose share of the API's rate limit a request with this token uses (config.api.TokenRateThrottle): named
        by the digest, so the count can start before the token is read (ApiTokenAuthentication)."""
        return self.rate_key_of(self.digest)

    @staticmethod
    def rate_key_of(digest):
        """The rate_key of the token with this digest."""
        return f"token-{digest[:32]}"

    @staticmethod
    def digest_of(secret):
        """The stored form of a secret: its SHA-256 (a random 256-bit secret needs no slow hash)."""
        return hashlib.sha256(secret.encode()).hexdigest()

    @classmethod
    def issue(cls, user, *, name, scope=READ, days=90, course=None, token=None):
        """A new token (saved; into the unsaved instance token when given, as the admin site has one) and its
        secret, returned only here: it is never stored."""
        secret = cls.PREFIX + secrets.token_urlsafe(32)
        token = token or cls()
        token.name, token.course, token.user, token.scope = name[:100], course, user, scope
        token.digest, token.hint = cls.digest_of(secret), secret[:len(cls.PREFIX) + 6]
        token.expires_at = timezone.now() + timedelta(days=days)
        token.save()
        return token, secret

    @property
    def is_usable(self):
        """Neither revoked nor expired."""
        return self.revoked_at is None and self.expires_at > timezone.now()

    @property
    def can_write(self):
        """Whether the token may change things (upload, settings, review), not only read."""
        return self.scope == self.WRITE

    def revoke(self):
        """Stop the token from working, at once and for good."""
        ApiToken.objects.filter(pk=self.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.refresh_from_db(fields=["revoked_at"])


class PersonSession(AbstractBaseSession):
    """A browser's sign-in after an LTI launch (Django's database session with the person it belongs to), so the
    admin can revoke every session of one person (courses.sessions, ``manage.py revoke_sessions``)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                             related_name="tool_sessions", verbose_name=_("person"))
    created_at = models.DateTimeField(_("signed in at"), default=timezone.now)

    class Meta:
        verbose_name = _("sign-in session")
        verbose_name_plural = _("sign-in sessions")

    @classmethod
    def get_session_store_class(cls):
        """The session engine storing these rows."""
        from courses.sessions import SessionStore

        return SessionStore
