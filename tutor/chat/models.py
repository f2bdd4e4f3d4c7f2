"""Models of the chat: conversations, their messages with citations and feedback, and the lecturer's test
questions for the course tutor."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from courses.models import Course


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
    evidence = models.JSONField(null=True, blank=True, help_text=_(
        "What the answer rests on: the retrieval evidence and, with the quote check, which quotes were found."))
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
    quote = models.TextField(blank=True, help_text=_("The answer's quote from this source, found in it."))

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


class TestQuestion(models.Model):
    """A lecturer's test question for the course tutor, with what a good answer contains, and how the tutor did
    the last time it was checked (tutor.chat.checks)."""

    __test__ = False  # a model, not a pytest test class
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="test_questions")
    question = models.TextField(_("question"), max_length=2000)
    expected = models.CharField(_("expected answer or passage"), max_length=500, blank=True, help_text=_(
        "Words the answer or its source passage should contain, e.g. a command or a short phrase from the text."))
    created_at = models.DateTimeField(auto_now_add=True)
    checked_at = models.DateTimeField(null=True, blank=True)
    found = models.BooleanField(null=True, help_text=_("A retrieved passage contains the expected words."))
    answered = models.BooleanField(null=True, help_text=_("The tutor answered (did not decline)."))
    correct = models.BooleanField(null=True, help_text=_("The answer contains the expected words."))
    answer = models.TextField(blank=True)
    error = models.CharField(max_length=32, blank=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self):
        return self.question[:60]
