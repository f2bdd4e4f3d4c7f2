"""Models of the tutor app: per-course tutor settings, conversations, messages, citations and feedback."""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from courses.models import Course


class TutorConfig(models.Model):
    """How a course's tutor answers: model, prompt, language, strictness, sources, retention."""

    STRICT, OPEN = "strict", "open"
    STRICTNESS = [
        (STRICT, _("Only from the course texts")),
        (OPEN, _("May add general knowledge, marked as such")),
    ]
    AUTO, GERMAN, ENGLISH = "auto", "de", "en"
    LANGUAGES = [(AUTO, _("The language of the question")), (GERMAN, _("German")), (ENGLISH, _("English"))]

    course = models.OneToOneField(Course, on_delete=models.CASCADE, related_name="tutor_config")
    model = models.CharField(_("model"), max_length=200, blank=True,
                             help_text=_("Name of the model on the inference server; empty: the server's default."))
    endpoint = models.CharField(_("inference server"), max_length=500, blank=True,
                                help_text=_("Base URL(s), comma-separated; empty: the configured default."))
    timeout_seconds = models.PositiveIntegerField(_("time limit of the inference server in seconds"), null=True,
                                                  blank=True, validators=[MinValueValidator(1),
                                                                          MaxValueValidator(600)])
    system_prompt = models.TextField(_("system prompt"), blank=True,
                                     help_text=_("Empty: the built-in prompt in the answer language."))
    answer_language = models.CharField(_("answer language"), max_length=8, choices=LANGUAGES, default=AUTO)
    temperature = models.FloatField(_("temperature"), default=0.2,
                                    validators=[MinValueValidator(0.0), MaxValueValidator(2.0)])
    sources = models.PositiveSmallIntegerField(_("number of sources"), default=4,
                                               validators=[MinValueValidator(1), MaxValueValidator(10)])
    strictness = models.CharField(_("strictness"), max_length=8, choices=STRICTNESS, default=STRICT)
    welcome_message = models.TextField(_("welcome message"), blank=True)
    retention_days = models.PositiveIntegerField(_("keep conversations for (days)"), default=180,
                                                 validators=[MinValueValidator(1), MaxValueValidator(3650)])
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("tutor settings")
        verbose_name_plural = _("tutor settings")

    def __str__(self):
        return f"Tutor of {self.course}"

    @classmethod
    def for_course(cls, course):
        """The course's settings, created with the defaults on first use."""
        config, _created = cls.objects.get_or_create(course_id=getattr(course, "pk", course))
        return config


class Conversation(models.Model):
    """One person's chat with the tutor of one course; resumable across launches."""

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="conversations")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        indexes = [models.Index(fields=["course", "user", "-updated_at"], name="conversation_latest")]

    def __str__(self):
        return f"Conversation {self.pk} in {self.course_id}"


class Message(models.Model):
    """A question of the person or an answer of the tutor; answers stream, then are done or failed."""

    USER, ASSISTANT = "user", "assistant"
    ROLES = [(USER, _("Question")), (ASSISTANT, _("Answer"))]
    PENDING, STREAMING, DONE, FAILED = "pending", "streaming", "done", "failed"
    STATUSES = [(PENDING, _("Waiting")), (STREAMING, _("Answering")), (DONE, _("Done")), (FAILED, _("Failed"))]

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=16, choices=ROLES)
    text = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=STATUSES, default=DONE)
    error = models.CharField(max_length=32, blank=True)
    declined = models.BooleanField(default=False, help_text=_("Nothing relevant was found in the course texts."))
    search_query = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self):
        return f"{self.role} message {self.pk}"

    @property
    def finished(self):
        """Whether the answer will not change any more."""
        return self.status in (self.DONE, self.FAILED)


class Citation(models.Model):
    """A numbered source of an answer: the cited chunk and a snapshot of where it stood."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="citations")
    number = models.PositiveSmallIntegerField()
    chunk_id = models.BigIntegerField()
    document_title = models.CharField(max_length=255)
    section_path = models.TextField(blank=True)
    page = models.PositiveIntegerField(null=True, blank=True)
    excerpt = models.TextField(blank=True)
    score = models.FloatField(default=0.0)
    cited = models.BooleanField(default=False, help_text=_("The answer refers to this source by its number."))

    class Meta:
        ordering = ["message", "number"]
        constraints = [models.UniqueConstraint(fields=["message", "number"], name="one_citation_per_number")]

    def __str__(self):
        return f"[{self.number}] {self.document_title}"


class Feedback(models.Model):
    """Thumbs up or down on an answer, with an optional comment."""

    UP, DOWN = 1, -1
    RATINGS = [(UP, _("Helpful")), (DOWN, _("Not helpful"))]

    message = models.OneToOneField(Message, on_delete=models.CASCADE, related_name="feedback")
    rating = models.SmallIntegerField(choices=RATINGS)
    comment = models.TextField(blank=True, max_length=2000)
    created_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"{self.rating:+d} on message {self.message_id}"
