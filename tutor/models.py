"""Models of the tutor app. Here: TutorConfig, a course's tutor settings, shared by every room.

The rooms' models are imported below so Django registers them under the app label "tutor" and
``from tutor.models import X`` keeps working (migrations, settings.SPECTACULAR): the chat's Conversation,
Message, Citation, Feedback, TestQuestion and AiNoticeAcceptance (tutor.chat.models); the question bank's
QuestionSet, GenerationRun, GenerationPart, GenerationRequest, Question, QuestionChange, Attempt and
OpenAnswerFeedback (tutor.questions.models).
"""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from courses.models import Course
from tutor.chat.models import (  # noqa: F401
    AiNoticeAcceptance,
    Citation,
    Conversation,
    Feedback,
    Message,
    TestQuestion,
)
from tutor.questions.models import (  # noqa: F401
    Attempt,
    GenerationPart,
    GenerationRequest,
    GenerationRun,
    OpenAnswerFeedback,
    Question,
    QuestionChange,
    QuestionQuerySet,
    QuestionSet,
    QuestionSetQuerySet,
)


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
    BOTH, QUOTES_ONLY, EXPLANATION_ONLY = "both", "quotes", "explanation"
    ANSWER_MODES = [(DEFAULT, _("As the installation decides for the model")),
                    (BOTH, _("Quotes from the course texts, then the model's explanation")),
                    (QUOTES_ONLY, _("Quotes from the course texts only")),
                    (EXPLANATION_ONLY, _("The model's explanation only"))]
    answer_mode = models.CharField(
        _("answers"), max_length=12, choices=ANSWER_MODES, default=DEFAULT, blank=True,
        help_text=_("The tutor itself picks the sentences of the course texts that answer a question and shows them "
                    "first, word for word, each linked to its passage; the model's explanation follows. Small models "
                    "often explain wrongly: there the quotes alone are the answer."))
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
    quota_day = models.PositiveIntegerField(
        _("questions per person and day"), null=True, blank=True,
        help_text=_("Empty: the installation's CHAT_QUOTA_DAY; 0: no limit."))
    quota_week = models.PositiveIntegerField(
        _("questions per person and week"), null=True, blank=True,
        help_text=_("Empty: the installation's CHAT_QUOTA_WEEK; 0: no limit."))
    generation_quota_day = models.PositiveIntegerField(
        _("generated questions per person and day"), null=True, blank=True,
        help_text=_("Empty: the installation's GENERATION_QUOTA_DAY; 0: no limit."))
    generation_quota_week = models.PositiveIntegerField(
        _("generated questions per person and week"), null=True, blank=True,
        help_text=_("Empty: the installation's GENERATION_QUOTA_WEEK; 0: no limit."))
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

    @property
    def answers_with(self):
        """How answers are given: BOTH, QUOTES_ONLY or EXPLANATION_ONLY (the course's setting, else
        CHAT_ANSWER_MODE, whose "auto" quotes only where there is no model or a CHAT_WEAK_MODELS one)."""
        if self.answer_mode in (self.BOTH, self.QUOTES_ONLY, self.EXPLANATION_ONLY):
            return self.answer_mode
        if settings.CHAT_ANSWER_MODE in (self.BOTH, self.QUOTES_ONLY, self.EXPLANATION_ONLY):
            return settings.CHAT_ANSWER_MODE
        if not (self.endpoint or settings.INFERENCE_URLS) or self.model_name in settings.CHAT_WEAK_MODELS:
            return self.QUOTES_ONLY
        return self.BOTH

    @classmethod
    def for_course(cls, course):
        """The course's settings, created with the defaults on first use (a course fetched with
        select_related("tutor_config") costs no query)."""
        try:
            return course.tutor_config
        except (AttributeError, cls.DoesNotExist):
            config, _created = cls.objects.get_or_create(course_id=getattr(course, "pk", course))
            return config
