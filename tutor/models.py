"""Models of the tutor app: per-course tutor settings, conversations, messages, citations and feedback."""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from pgvector.django import VectorField

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
    DEFAULT, ON, OFF = "", "on", "off"
    SWITCH = [(DEFAULT, _("As the installation decides for the model")), (ON, _("On")), (OFF, _("Off"))]
    quote_check = models.CharField(
        _("quote check"), max_length=8, choices=SWITCH, default=DEFAULT, blank=True,
        help_text=_("The tutor quotes its evidence from each source it cites, and an answer whose quotes are not "
                    "found in the course texts is declined (strict) or marked (open). Small models rarely quote "
                    "correctly: there the retrieval evidence alone decides."))
    query_rewrite = models.CharField(
        _("search with reworded questions"), max_length=8, choices=SWITCH, default=DEFAULT, blank=True,
        help_text=_("The model rewords each question before the search, so questions in other words than the "
                    "course texts' are found too. Costs the model's time before each answer."))
    CHECK_OFF, CHECK_FLAG, CHECK_DROP = "off", "flag", "drop"
    TEST_STUDENT = [(CHECK_OFF, _("Off")), (CHECK_FLAG, _("Flag the question")),
                    (CHECK_DROP, _("Drop the question and write another"))]
    question_test_student = models.CharField(
        _("test student"), max_length=8, choices=TEST_STUDENT, default=CHECK_FLAG,
        help_text=_("Before you see a generated question, the model answers it once with its source passage and "
                    "once without: a question it cannot answer with the passage may be unclear or have a wrong "
                    "key; one it answers without the passage may be guessable."))
    ANSWER_FIRST, WHOLE_PASSAGE = "answer_first", "whole_passage"
    QUESTION_METHODS = [
        (ANSWER_FIRST, _("Answer first: the tool picks the answer in a sentence, the model phrases the question")),
        (WHOLE_PASSAGE, _("Whole passage: the model writes questions and answers from the passages"))]
    question_method = models.CharField(
        _("how multiple-choice and short-answer questions are written"), max_length=16, choices=QUESTION_METHODS,
        default=ANSWER_FIRST,
        help_text=_("Answer first: the answer key is always a phrase of its source sentence, word for word, and the "
                    "model only phrases the question and the wrong options (one question per request, a short "
                    "prompt). The other kinds are always written from the whole passage."))
    question_test_tries = models.PositiveSmallIntegerField(
        _("tries of the test student"), default=2, validators=[MinValueValidator(1), MaxValueValidator(5)],
        help_text=_("Each try shuffles the options; more tries are surer and cost more model time."))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("tutor settings")
        verbose_name_plural = _("tutor settings")

    def __str__(self):
        return f"Tutor of {self.course}"

    @property
    def model_name(self):
        """The model this tutor answers with (the course's choice or the installation's default)."""
        return self.model or settings.INFERENCE_MODEL

    def _switch(self, value, setting):
        if value in (self.ON, self.OFF):
            return value == self.ON
        if setting in ("on", "off"):
            return setting == "on"
        return self.model_name not in settings.CHAT_WEAK_MODELS

    @property
    def checks_quotes(self):
        """Whether answers quote their evidence and are checked against it (the course's setting, else
        CHAT_QUOTE_CHECK, whose "auto" is off for CHAT_WEAK_MODELS)."""
        return self._switch(self.quote_check, settings.CHAT_QUOTE_CHECK)

    @property
    def rewrites_queries(self):
        """Whether the model rewords questions for the search (the course's setting, else CHAT_QUERY_REWRITE)."""
        return self._switch(self.query_rewrite, settings.CHAT_QUERY_REWRITE)

    @classmethod
    def for_course(cls, course):
        """The course's settings, created with the defaults on first use (a course fetched with
        select_related("tutor_config") costs no query)."""
        try:
            return course.tutor_config
        except (AttributeError, cls.DoesNotExist):
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


# --- Practice: question sets generated from the course texts, reviewed by the lecturer, answered by students ---

class QuestionSetQuerySet(models.QuerySet):
    """Question sets read as sentences: QuestionSet.objects.filter(course=course).released()."""

    def released(self):
        """The sets students can practise."""
        return self.filter(status=QuestionSet.RELEASED)


class QuestionSet(models.Model):
    """Questions about one or more sections of the course texts.

    Generated drafts wait for the lecturer's review; only a released set is shown to students, and only
    its approved questions. A set placed in the LMS as a graded item has a gradebook column there: lti keeps
    its AGS line item (lti.LtiLineItem) under the set's ``resource_id``; what the gradebook holds for a person
    follows the set's grading rule (best, last, first attempt or the average).
    """

    DRAFT, RELEASED = "draft", "released"
    STATUSES = [(DRAFT, _("Draft")), (RELEASED, _("Released"))]
    IDLE, QUEUED, RUNNING, DONE, FAILED = "idle", "queued", "running", "done", "failed"
    GENERATION = [(IDLE, _("Not started")), (QUEUED, _("Waiting")), (RUNNING, _("Generating")),
                  (DONE, _("Generated")), (FAILED, _("Failed"))]
    BEST, LAST, FIRST, AVERAGE = "best", "last", "first", "average"
    GRADING = [(BEST, _("The best attempt counts")), (LAST, _("The last attempt counts")),
               (FIRST, _("The first attempt counts")), (AVERAGE, _("The average of all attempts counts"))]

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="question_sets")
    sections = models.ManyToManyField("courses.Section", related_name="question_sets", blank=True)
    section = models.ForeignKey("courses.Section", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
                                help_text=_("The section this set belongs beside (a set per section)."))
    title = models.CharField(_("title"), max_length=255)
    status = models.CharField(_("status"), max_length=16, choices=STATUSES, default=DRAFT)
    requested = models.PositiveIntegerField(_("number of questions"), default=5)
    kinds = models.JSONField(default=list, help_text=_("The kinds of question asked for (Question.KINDS)."))
    generation = models.CharField(max_length=16, choices=GENERATION, default=IDLE)
    generation_error = models.CharField(max_length=32, blank=True)
    generation_detail = models.TextField(blank=True)
    dropped = models.PositiveIntegerField(default=0, help_text=_("Generated questions that failed the checks."))
    generation_changed_at = models.DateTimeField(null=True, blank=True)
    generated_at = models.DateTimeField(null=True, blank=True)
    graded = models.BooleanField(default=False, help_text=_("Placed in the LMS with a gradebook column."))
    grading = models.CharField(_("grading rule"), max_length=8, choices=GRADING, default=BEST)
    attempts_allowed = models.PositiveSmallIntegerField(
        _("attempts allowed"), default=0, validators=[MaxValueValidator(100)],
        help_text=_("How many times a student may submit the set; 0: as often as they like."))
    open_answers_graded = models.BooleanField(
        _("open answers count toward the grade"), default=False,
        help_text=_("Off: answers to open questions get feedback (the model's, or yours) but no points. On: each "
                    "counts with the share of its rubric that the feedback finds (yours where you gave one)."))
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    released_at = models.DateTimeField(null=True, blank=True)

    objects = QuestionSetQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("question set")
        verbose_name_plural = _("question sets")

    def __str__(self):
        return self.title

    @property
    def is_released(self):
        """Whether students can practise it."""
        return self.status == self.RELEASED

    @property
    def generation_stalled(self):
        """Queued or generating for longer than any generation may take (its worker was lost)."""
        from tutor.generation import stalled_after

        return (self.generation in (self.QUEUED, self.RUNNING) and self.generation_changed_at is not None
                and timezone.now() - self.generation_changed_at > stalled_after(self.requested))

    @property
    def resource_id(self):
        """The resourceId of its AGS line item (stable across placements)."""
        return f"tutor-question-set-{self.pk}"


class GenerationRun(models.Model):
    """A lecturer's request for questions about many sections at once (a whole text, or chosen chapters): each
    section is generated by its own task (a GenerationPart), so one failing section stops none of the others."""

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="generation_runs")
    title = models.CharField(_("title"), max_length=255)
    per_section = models.PositiveSmallIntegerField(_("questions per section"), default=3)
    kinds = models.JSONField(default=list)
    one_set = models.BooleanField(default=False, help_text=_("One set for all sections (else a set per section)."))
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return self.title


class GenerationPart(models.Model):
    """The questions of one set about one section: what was asked for, made and dropped (and why), and the
    state of the task that writes them (idempotent: it only ever fills what is missing)."""

    QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
    STATES = [(QUEUED, _("Waiting")), (RUNNING, _("Generating")), (DONE, _("Generated")), (FAILED, _("Failed"))]

    question_set = models.ForeignKey(QuestionSet, on_delete=models.CASCADE, related_name="parts")
    section = models.ForeignKey("courses.Section", on_delete=models.SET_NULL, null=True, related_name="+")
    run = models.ForeignKey(GenerationRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="parts")
    requested = models.PositiveSmallIntegerField(default=0)
    state = models.CharField(max_length=16, choices=STATES, default=QUEUED)
    error = models.CharField(max_length=32, blank=True)
    detail = models.TextField(blank=True)
    made = models.PositiveSmallIntegerField(default=0)
    dropped = models.PositiveSmallIntegerField(default=0)
    reasons = models.JSONField(default=dict, help_text="why questions were dropped: reason code -> count")
    dropped_items = models.JSONField(default=list, help_text="the dropped questions (stem, reasons), the latest few")
    checks = models.JSONField(default=dict, help_text="every check run on every question written: check -> "
                                                      "{passed, failed: {reason: count}, not_run}")
    rounds = models.PositiveSmallIntegerField(default=0)
    model_calls = models.PositiveIntegerField(default=0)
    model_seconds = models.FloatField(default=0.0)
    seconds = models.FloatField(default=0.0)
    changed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["question_set", "id"]
        constraints = [models.UniqueConstraint(fields=["question_set", "section"], name="one_part_per_set_section")]

    def __str__(self):
        return f"part {self.pk} of set {self.question_set_id}"

    @property
    def stalled(self):
        """Queued or running for longer than any generation may take (its worker was lost)."""
        from tutor.generation import stalled_after

        return self.state in (self.QUEUED, self.RUNNING) and timezone.now() - self.changed_at > stalled_after(
            self.requested)


class QuestionQuerySet(models.QuerySet):
    """Questions read as sentences: question_set.questions.approved()."""

    def approved(self):
        """The questions the lecturer approved (the only ones students ever see)."""
        return self.filter(review=Question.APPROVED)


class Question(models.Model):
    """One question: its kind, text, what counts as right, an explanation, its source passage, and the results of
    the automatic checks (each with its reason) that ran before the lecturer saw it.

    Kinds: single-answer and multiple-answer multiple choice (``options`` with ``correct_index`` or
    ``correct_indices``), true/false (``truth``), short answer (``accepted_answers``, ``case_sensitive``), the
    open question (``model_answer`` and ``rubric`` for the lecturer; never scored automatically) and the gap fill
    built from the text without a model (a sentence of the text with its key term blanked in ``stem``, the key and
    distractors in ``options``, the key at ``correct_index``).
    """

    SINGLE, MULTIPLE, TRUE_FALSE, SHORT, OPEN = "multichoice", "multiresponse", "truefalse", "shortanswer", "essay"
    GAP_FILL = "gapfill"
    MULTIPLE_CHOICE = SINGLE
    KINDS = [(SINGLE, _("Multiple choice, one answer")), (MULTIPLE, _("Multiple choice, several answers")),
             (TRUE_FALSE, _("True or false")), (SHORT, _("Short answer")), (OPEN, _("Open question")),
             (GAP_FILL, _("Gap fill with choices, built from the text"))]
    CHOICE_KINDS = (SINGLE, MULTIPLE, GAP_FILL)
    ONE_ANSWER_KINDS = (SINGLE, GAP_FILL)  # choices of which exactly one is right (correct_index)
    TEXT_BUILT_KINDS = (GAP_FILL,)  # built by the tool from the text, without a language model
    DRAFT, APPROVED, REJECTED = "draft", "approved", "rejected"
    REVIEW = [(DRAFT, _("Not reviewed")), (APPROVED, _("Approved")), (REJECTED, _("Rejected"))]
    GENERATED, IMPORTED, WRITTEN = "generated", "imported", "written"
    ORIGINS = [(GENERATED, _("Generated")), (IMPORTED, _("Imported")), (WRITTEN, _("Written by hand"))]

    question_set = models.ForeignKey(QuestionSet, on_delete=models.CASCADE, related_name="questions")
    part = models.ForeignKey(GenerationPart, on_delete=models.SET_NULL, null=True, blank=True,
                             related_name="questions")
    position = models.PositiveIntegerField()
    kind = models.CharField(max_length=16, choices=KINDS, default=SINGLE)
    stem = models.TextField(_("question"))
    options = models.JSONField(_("options"), default=list)
    correct_index = models.PositiveSmallIntegerField(_("correct option"), default=0)
    correct_indices = models.JSONField(_("correct options"), default=list, blank=True)
    truth = models.BooleanField(_("the statement is true"), null=True, blank=True)
    accepted_answers = models.JSONField(_("accepted answers"), default=list, blank=True)
    case_sensitive = models.BooleanField(_("case matters"), default=False)
    model_answer = models.TextField(_("model answer"), blank=True)
    rubric = models.TextField(_("rubric"), blank=True)
    explanation = models.TextField(_("explanation"), blank=True)
    source_chunk = models.ForeignKey("courses.Chunk", on_delete=models.SET_NULL, null=True, blank=True,
                                     related_name="+")
    source_section = models.ForeignKey("courses.Section", on_delete=models.SET_NULL, null=True, blank=True,
                                       related_name="+")
    review = models.CharField(_("review"), max_length=16, choices=REVIEW, default=DRAFT)
    origin = models.CharField(max_length=16, choices=ORIGINS, default=GENERATED)
    checks = models.JSONField(default=list, blank=True,
                              help_text="the automatic checks: [{check, ok, reason, detail}]")
    flagged = models.BooleanField(default=False, help_text=_("An automatic check found a problem."))
    embedding = VectorField(null=True, blank=True)
    embedding_model = models.CharField(max_length=200, blank=True)
    revising = models.CharField(max_length=32, blank=True, help_text="what the model is rewriting now, e.g. option:2")
    edited = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = QuestionQuerySet.as_manager()

    class Meta:
        ordering = ["question_set", "position"]
        constraints = [models.UniqueConstraint(fields=["question_set", "position"], name="one_question_per_position")]

    def __str__(self):
        return self.stem[:80]

    @property
    def is_choice(self):
        """Multiple choice with one or several answers."""
        return self.kind in self.CHOICE_KINDS

    @property
    def is_scored(self):
        """Whether a student's answer is scored automatically (all kinds but the open question)."""
        return self.kind != self.OPEN

    @property
    def is_gap_fill(self):
        """A sentence of the text with a gap and choices for it."""
        return self.kind == self.GAP_FILL

    @property
    def gap_parts(self):
        """(text before the gap, text after it) of a gap-fill question ('' and the whole stem without a gap)."""
        from tutor.questions.spans import GAP

        before, _gap, after = self.stem.partition(GAP)
        return (before, after) if _gap else ("", self.stem)

    @property
    def correct_set(self):
        """The indices of the correct options of a multiple-choice question."""
        if self.kind in self.ONE_ANSWER_KINDS:
            return {self.correct_index}
        if self.kind == self.MULTIPLE:
            return set(self.correct_indices)
        return set()

    @property
    def is_revising(self):
        """Whether the model is rewriting part of it now (a rewrite whose worker was lost ends after 10 minutes)."""
        from datetime import timedelta

        return bool(self.revising) and timezone.now() - self.updated_at < timedelta(minutes=10)

    @property
    def failed_checks(self):
        """The checks this question did not pass (for the review page)."""
        return [c for c in self.checks if c.get("ok") is False]


class QuestionChange(models.Model):
    """One change of a question (made, edited, approved, rejected, regenerated, imported): who, when and what."""

    question = models.ForeignKey(Question, on_delete=models.CASCADE, related_name="changes")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                             related_name="+")
    action = models.CharField(max_length=32)
    changes = models.JSONField(default=dict, blank=True, help_text="field -> [before, after]")
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self):
        return f"{self.action} of question {self.question_id}"


class Attempt(models.Model):
    """A student's submitted answers to a released set, the score, and the state of its grade passback."""

    NOT_GRADED, PENDING, SENT, FAILED = "none", "pending", "sent", "failed"
    GRADE_STATUSES = [(NOT_GRADED, _("Not graded in the LMS")), (PENDING, _("Sending to the gradebook")),
                      (SENT, _("Sent to the gradebook")), (FAILED, _("Could not be sent to the gradebook"))]

    question_set = models.ForeignKey(QuestionSet, on_delete=models.CASCADE, related_name="attempts")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="attempts")
    answers = models.JSONField(default=dict, help_text="question id -> the response (option index, list of "
                                                        "indices, true/false or text; null: not answered)")
    credits = models.JSONField(default=dict, help_text="question id -> credit 0..1 (null: not scored)")
    score = models.FloatField(default=0)
    max_score = models.PositiveSmallIntegerField(default=0)
    submitted_at = models.DateTimeField(auto_now_add=True)
    grade_status = models.CharField(max_length=16, choices=GRADE_STATUSES, default=NOT_GRADED)
    grade_error = models.TextField(blank=True)
    grade_sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-submitted_at", "-id"]
        indexes = [models.Index(fields=["question_set", "user"], name="attempt_set_user")]

    def __str__(self):
        return f"Attempt {self.pk}: {self.score}/{self.max_score}"


class OpenAnswerFeedback(models.Model):
    """Feedback on one answer to an open question of an attempt: the model's, against the question's rubric and
    model answer (what is there, what is missing, which passage to reread), marked as AI feedback; a lecturer may
    override it with their own text (and credit). It counts toward the grade only where the set says so."""

    PENDING, RUNNING, DONE, FAILED = "pending", "running", "done", "failed"
    STATES = [(PENDING, _("Waiting")), (RUNNING, _("Being written")), (DONE, _("Written")), (FAILED, _("Failed"))]

    attempt = models.ForeignKey(Attempt, on_delete=models.CASCADE, related_name="open_feedback")
    question = models.ForeignKey(Question, on_delete=models.CASCADE, related_name="open_feedback")
    state = models.CharField(max_length=16, choices=STATES, default=PENDING)
    error = models.CharField(max_length=32, blank=True)
    ai_text = models.TextField(blank=True, help_text="the model's feedback in its own words")
    present = models.JSONField(default=list, blank=True, help_text="rubric points the answer makes (the model's view)")
    missing = models.JSONField(default=list, blank=True, help_text="rubric points the answer misses (the model's view)")
    ai_credit = models.FloatField(null=True, blank=True, help_text="share of the rubric points present, 0..1")
    lecturer_text = models.TextField(_("your feedback"), blank=True)
    lecturer_credit = models.FloatField(_("your credit (0 to 1)"), null=True, blank=True,
                                        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)])
    overridden_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                      related_name="+")
    overridden_at = models.DateTimeField(null=True, blank=True)
    model_seconds = models.FloatField(default=0.0)
    created_at = models.DateTimeField(auto_now_add=True)
    changed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["attempt", "question__position"]
        constraints = [models.UniqueConstraint(fields=["attempt", "question"], name="one_feedback_per_answer")]

    def __str__(self):
        return f"feedback on question {self.question_id} in attempt {self.attempt_id}"

    @property
    def overridden(self):
        """Whether the lecturer's own feedback replaces the model's."""
        return bool(self.lecturer_text.strip()) or self.lecturer_credit is not None

    @property
    def credit(self):
        """The credit this feedback gives the answer (the lecturer's where given, else the model's); it counts
        toward the grade only where the set's open_answers_graded says so."""
        return self.lecturer_credit if self.lecturer_credit is not None else self.ai_credit


class TestQuestion(models.Model):
    """A lecturer's test question for the course tutor, with what a good answer contains, and how the tutor did
    the last time it was checked (tutor.checks)."""

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
