"""Models of the question bank and practice: question sets, generation runs and their parts, the generation
requests a budget counts, questions with their change history, students' attempts and the feedback on their open
answers."""

from datetime import timedelta

from django.conf import settings
from django.contrib.postgres.aggregates import ArrayAgg
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Count, Q, Value
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from pgvector.django import VectorField

from courses.models import Course

REVISING_FOR = timedelta(minutes=10)  # a rewrite whose worker was lost ends after this


class QuestionSetQuerySet(models.QuerySet):
    """Question sets read as sentences: QuestionSet.objects.filter(course=course).released()."""

    def released(self):
        """The sets students can practise."""
        return self.filter(status=QuestionSet.RELEASED)

    def with_origins(self):
        """Each set with question_count, question_origins (its questions' origins) and part_count, in the list's one
        query (for a list of sets: counts and QuestionSet.sources without a query per set)."""
        return self.annotate(question_count=Count("questions", distinct=True),
                             question_origins=ArrayAgg("questions__origin", distinct=True, default=Value([])),
                             part_count=Count("parts", distinct=True))


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
    shuffle_options = models.BooleanField(
        _("shuffle the options"), default=True,
        help_text=_("Each student sees the options of a choice question in an order of their own, new for each "
                    "attempt; off: in the order written here."))
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
    def sources(self):
        """Where the set's questions come from, as [(origin, label)] in Question.ORIGINS' order: generated,
        imported, written by hand; a set asked to be generated that has no questions yet counts as generated."""
        annotated = hasattr(self, "question_origins")  # QuestionSetQuerySet.with_origins: no query per set
        origins = set(filter(None, self.question_origins)) if annotated else \
            set(self.questions.values_list("origin", flat=True))
        has_parts = self.part_count > 0 if annotated else self.parts.exists()
        if not origins and (self.requested or has_parts):
            origins = {Question.GENERATED}
        return [(value, label) for value, label in Question.ORIGINS if value in origins]

    @property
    def is_generated(self):
        """Whether the set was (also) generated by the model, so that its generation has a state to show."""
        has_parts = self.part_count > 0 if hasattr(self, "part_count") else self.parts.exists()
        return has_parts or any(value == Question.GENERATED for value, _label in self.sources)

    @property
    def is_released(self):
        """Whether students can practise it."""
        return self.status == self.RELEASED

    @property
    def generation_stalled(self):
        """Queued or generating for longer than any generation may take (its worker was lost)."""
        from tutor.questions.generation import stalled_after

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


class GenerationRequest(models.Model):
    """How many questions one person asked the model to generate in a course, and when: what the per-person day and
    week budgets of generated questions count (tutor.questions.quotas)."""

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    items = models.PositiveIntegerField(_("questions asked for"))
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["user", "course", "created_at"], name="generation_request_budget")]

    def __str__(self):
        return f"{self.items} questions in course {self.course_id}"


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
        from tutor.questions.generation import stalled_after

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
    GAP_FILL = "gapfill"
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
        return bool(self.revising) and timezone.now() - self.updated_at < REVISING_FOR

    @staticmethod
    def revising_now(prefix=""):
        """is_revising as a filter (prefix: the path to the questions, e.g. "questions__"), to count in SQL."""
        return Q(**{f"{prefix}revising__gt": "", f"{prefix}updated_at__gt": timezone.now() - REVISING_FOR})

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
