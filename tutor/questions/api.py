"""The API of the question bank: sections, question sets (generate, status with what was asked for, made and
dropped and why, items of every kind with their checks and history, review, rewrite, grading rule, release,
export, statistics), their questions and whole-text generation runs.

Thin views over the domain functions the pages use: tutor.questions.review, tutor.questions.generation,
tutor.questions.item_checks, tutor.questions.practice, tutor.questions.item_stats and tutor.questions.exports.
"""

from django.db import transaction
from django.db.models import Count, Q
from django.urls import reverse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import parsers, renderers, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from config.api import (
    PROBLEM,
    Conflict,
    check_if_match,
    with_etag,
)
from config.api_schema import ProblemSerializer
from courses import sections as course_sections
from courses.access import TEACH
from courses.api import found
from courses.models import Section
from tutor.api import IF_MATCH, body_of
from tutor.questions import exports, generation, imports, item_checks, item_stats, practice, review
from tutor.questions.models import GenerationPart, GenerationRun, Question, QuestionSet


class SectionSerializer(serializers.ModelSerializer):
    """A section of the course texts that holds indexed text (what questions are generated from)."""

    document_title = serializers.CharField(source="document.title")

    class Meta:
        model = Section
        fields = ["id", "document_id", "document_title", "path", "title", "level", "page_start", "page_end"]


@extend_schema(tags=["question sets"])
class SectionViewSet(viewsets.GenericViewSet):
    """The sections of the course texts questions can be generated from, in document order."""

    serializer_class = SectionSerializer
    read_level = TEACH

    def get_queryset(self):
        return review.sections_of(self.request.grant.course)

    def list(self, request, course_id):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(SectionSerializer(page, many=True).data)


class ReasonCountSerializer(serializers.Serializer):
    """Why generated questions were dropped: the reason's code, its words in the reader's language, how many."""

    reason = serializers.CharField(help_text="e.g. form:placeholder, duplicate, test_student:guessable")
    label = serializers.CharField()
    count = serializers.IntegerField()


class PartSerializer(serializers.Serializer):
    """One section's share of a set: its generation task's state, the questions asked for, made and dropped."""

    id = serializers.IntegerField()
    section = serializers.IntegerField(source="section_id", allow_null=True)
    question_set = serializers.IntegerField(source="question_set_id")
    state = serializers.ChoiceField(choices=GenerationPart.STATES)
    state_label = serializers.CharField(source="get_state_display")
    error = serializers.CharField(source="error_text", help_text="Why it failed, in the reader's language.")
    requested = serializers.IntegerField()
    made = serializers.IntegerField()
    dropped = serializers.IntegerField()
    dropped_reasons = ReasonCountSerializer(many=True)


def reason_counts(reasons):
    """{reason code: count} as the API's list of reasons with their words (tutor.questions.generation.reason_label)."""
    return [{"reason": code, "label": generation.reason_label(code), "count": n} for code, n in reasons.items()]


def described_parts(parts):
    """The parts with their failure and drop reasons worded for the reader (for PartSerializer)."""
    parts = list(parts)
    for part in parts:
        part.error_text = review.part_error(part)
        part.dropped_reasons = reason_counts(part.reasons)
    return parts


class QuestionSetSerializer(serializers.ModelSerializer):
    """A question set: its review status, the state of its generation (with the reason of a failure), what was
    asked for, made and dropped (and why, per section), its questions counted and its grading rule."""

    generation_label = serializers.CharField(source="get_generation_display", read_only=True)
    error = serializers.SerializerMethodField(help_text="Why the generation failed, in the reader's language.")
    stalled = serializers.BooleanField(source="generation_stalled", read_only=True,
                                       help_text="Queued or generating for longer than a generation may take.")
    made = serializers.SerializerMethodField(help_text="Questions written that passed the checks.")
    dropped_reasons = serializers.SerializerMethodField()
    parts = serializers.SerializerMethodField()
    questions = serializers.IntegerField(source="question_count", read_only=True)
    approved = serializers.IntegerField(source="approved_count", read_only=True)
    revising = serializers.SerializerMethodField(help_text="Questions the model is rewriting a part of now.")
    sections = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    kinds = serializers.ListField(child=serializers.ChoiceField(choices=Question.KINDS), read_only=True)

    class Meta:
        model = QuestionSet
        fields = ["id", "title", "status", "generation", "generation_label", "error", "stalled", "kinds",
                  "requested", "made", "dropped", "dropped_reasons", "parts", "questions", "approved", "revising",
                  "grading", "attempts_allowed", "sections", "section", "created_at", "generated_at",
                  "released_at"]
        read_only_fields = fields

    def _progress(self, question_set):
        if not hasattr(question_set, "_progress"):
            question_set._progress = generation.progress(list(question_set.parts.all()))
        return question_set._progress

    def get_error(self, question_set) -> str:
        return review.error_message(question_set)

    def get_made(self, question_set) -> int:
        return self._progress(question_set)["made"] if question_set.parts.all() else question_set.question_count

    @extend_schema_field(ReasonCountSerializer(many=True))
    def get_dropped_reasons(self, question_set):
        return reason_counts(self._progress(question_set)["reasons"])

    @extend_schema_field(PartSerializer(many=True))
    def get_parts(self, question_set):
        return PartSerializer(described_parts(question_set.parts.all()), many=True).data

    def get_revising(self, question_set) -> int:
        return sum(q.is_revising for q in question_set.questions.exclude(revising=""))


class GenerateSerializer(serializers.Serializer):
    """What to generate: sections of the course texts, how many questions of which kinds, an optional title."""

    sections = serializers.ListField(child=serializers.IntegerField(), required=False, default=list)
    count = serializers.IntegerField(required=False, help_text=f"1 to {review.MAX_QUESTIONS}.")
    kinds = serializers.MultipleChoiceField(choices=Question.KINDS, required=False, default=list,
                                            help_text="The kinds of question (none: single-answer choice).")
    title = serializers.CharField(required=False, allow_blank=True, default="", max_length=255)


class OptionShareSerializer(serializers.Serializer):
    """How often an option (or true/false, or no answer) was chosen, and whether it is right."""

    label = serializers.CharField()
    share = serializers.FloatField(help_text="0 to 1 of the students who answered.")
    correct = serializers.BooleanField()


class AnswerCountSerializer(serializers.Serializer):
    """A frequent answer to a short-answer or open question."""

    text = serializers.CharField()
    count = serializers.IntegerField()


class FlagSerializer(serializers.Serializer):
    """A warning of the item statistics: easy, hard, flat (does not discriminate) or few (too few students)."""

    code = serializers.ChoiceField(choices=["easy", "hard", "flat", "few"])
    text = serializers.CharField()


class ItemStatisticsSerializer(serializers.Serializer):
    """One question's statistics over each student's first attempt (tutor.questions.item_stats)."""

    question = serializers.IntegerField()
    position = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=Question.KINDS)
    students = serializers.IntegerField()
    difficulty = serializers.FloatField(allow_null=True, help_text="Mean credit, 0 to 1.")
    point_biserial = serializers.FloatField(allow_null=True, help_text="Corrected point-biserial correlation.")
    upper_lower = serializers.FloatField(allow_null=True, help_text="Upper minus lower 27 % difficulty.")
    options = OptionShareSerializer(many=True)
    answers = AnswerCountSerializer(many=True)
    flags = FlagSerializer(many=True)


class StatisticsSerializer(serializers.Serializer):
    """Students' attempts at a released set: how many, the mean share of right answers, grades sent to the LMS,
    and each question's item statistics."""

    attempts = serializers.IntegerField()
    score = serializers.FloatField(allow_null=True, help_text="Credit in all attempts together.")
    maximum = serializers.IntegerField(allow_null=True, help_text="Scored questions in all attempts together.")
    percent = serializers.IntegerField(allow_null=True, help_text="Mean share of right answers.")
    graded = serializers.BooleanField(help_text="Attempts are reported to the LMS gradebook.")
    sent = serializers.IntegerField(help_text="Scores sent to the gradebook.")
    failed = serializers.IntegerField(help_text="Scores that could not be sent.")
    students = serializers.IntegerField(help_text="Students whose first attempt the item statistics read.")
    min_students = serializers.IntegerField(help_text="Students needed before a question is judged.")
    items = ItemStatisticsSerializer(many=True)


def item_statistics(question_set):
    """tutor.questions.item_stats' statistics of the set as the API gives them (question ids, options and flags as objects)."""
    statistics = item_stats.item_statistics(question_set)
    return statistics["students"], [{
        "question": e["question"].pk, "position": e["question"].position, "kind": e["question"].kind,
        "students": e["n"], "difficulty": e["difficulty"], "point_biserial": e["point_biserial"],
        "upper_lower": e["upper_lower"],
        "options": [{"label": str(label), "share": share, "correct": right} for label, share, right in e["options"]],
        "answers": [{"text": text, "count": n} for text, n in e["answers"]],
        "flags": [{"code": f, "text": item_stats.flag_text(f)} for f in e["flags"]]} for e in statistics["items"]]


class GradingSerializer(serializers.Serializer):
    """The set's grading rule (what the gradebook holds for a person) and how many attempts are allowed."""

    grading = serializers.ChoiceField(choices=QuestionSet.GRADING)
    attempts_allowed = serializers.IntegerField(required=False, default=0, help_text="0: no limit; at most 100.")


class ReviewManySerializer(serializers.Serializer):
    """Many questions of a set approved or rejected at once."""

    questions = serializers.ListField(child=serializers.IntegerField())
    review = serializers.ChoiceField(choices=Question.REVIEW)


class ReviewedSerializer(serializers.Serializer):
    """How many questions a bulk review changed."""

    changed = serializers.IntegerField()


class ImportSerializer(serializers.Serializer):
    """A Moodle XML file to import (multichoice, truefalse, shortanswer, essay), into a draft set or a new one."""

    file = serializers.FileField()
    set = serializers.IntegerField(required=False, help_text="A draft set of the course to add to (default: a new "
                                                             "set named after the file).")


class UnusableSerializer(serializers.Serializer):
    """A question of the file that was not imported, and why."""

    stem = serializers.CharField()
    reason = serializers.CharField()


class ImportedSerializer(serializers.Serializer):
    """What an import did: the set, the questions imported, those not usable and the question types skipped."""

    question_set = QuestionSetSerializer()
    imported = serializers.IntegerField()
    unusable = UnusableSerializer(many=True)
    skipped = serializers.DictField(child=serializers.IntegerField(), help_text="question type -> count")


class ExportRenderer(renderers.BaseRenderer):
    """Lets clients that accept only the export's file type (XML, text) download it; errors are JSON."""

    media_type = "*/*"
    format = "export"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return renderers.JSONRenderer().render(data)


@extend_schema(tags=["question sets"])
class QuestionSetViewSet(viewsets.GenericViewSet):
    """The course's question sets: generate (queued), status of the generation, bulk review, grading rule, release,
    export, statistics."""

    serializer_class = QuestionSetSerializer
    read_level = TEACH
    lookup_url_kwarg = "set_id"
    lookup_value_converter = "int"

    def get_queryset(self):
        return (QuestionSet.objects.filter(course_id=self.kwargs["course_id"]).prefetch_related("sections", "parts")
                .annotate(question_count=Count("questions", distinct=True),
                          approved_count=Count("questions", filter=Q(questions__review=Question.APPROVED),
                                               distinct=True))
                .order_by("-created_at", "-id"))

    def get_object(self):
        """The set as the domain functions take it (no prefetched parts that a retry would not see change)."""
        return found(QuestionSet.objects.filter(course_id=self.kwargs["course_id"]),
                     _("This question set does not exist in this course."), pk=self.kwargs["set_id"])

    def _set(self, question_set, **kwargs):
        return Response(QuestionSetSerializer(self.get_queryset().get(pk=question_set.pk)).data, **kwargs)

    def list(self, request, course_id):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(QuestionSetSerializer(page, many=True).data)

    @extend_schema(request=GenerateSerializer, responses={202: QuestionSetSerializer})
    def create(self, request, course_id):
        """Generate a set from sections of the texts (queued, a task per section; poll the set until its generation
        is done)."""
        data = body_of(request, GenerateSerializer)
        question_set = review.start_generation(request.grant.course, data["sections"], data.get("count", ""),
                                                  request.user, data["title"], kinds=data["kinds"])
        return self._set(question_set, status=status.HTTP_202_ACCEPTED,
                         headers={"Location": reverse("api:course-question-sets-detail",
                                                      args=[course_id, question_set.pk])})

    def retrieve(self, request, course_id, set_id):
        """A set and the state of its generation (what the set's review page polls)."""
        return self._set(self.get_object())

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def release(self, request, course_id, set_id):
        """Release the set to students (only its approved questions; at least one)."""
        return self._set(review.release(self.get_object()))

    @extend_schema(request=None, responses={202: QuestionSetSerializer})
    @action(detail=True, methods=["post"])
    def retry(self, request, course_id, set_id):
        """Generate what the set still misses (after a failure, a stalled generation, or fewer questions made than
        asked for)."""
        question_set = self.get_object()
        review.retry_generation(question_set)
        return self._set(question_set, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request={"multipart/form-data": ImportSerializer}, responses={201: ImportedSerializer})
    @action(detail=False, methods=["post"], url_path="import", parser_classes=[parsers.MultiPartParser])
    def import_file(self, request, course_id):
        """Import a Moodle XML file's questions as drafts (the form and near-duplicate checks run on them)."""
        asked = body_of(request, ImportSerializer)
        chosen = None
        if asked.get("set") is not None:
            chosen = found(QuestionSet.objects.filter(course_id=course_id),
                           _("This question set does not exist in this course."), pk=asked["set"])
        question_set, result = imports.import_file(request.grant.course, asked["file"].name,
                                                   asked["file"].read(imports.MAX_IMPORT_BYTES + 1), request.user,
                                                   chosen)
        return Response({"question_set": QuestionSetSerializer(self.get_queryset().get(pk=question_set.pk)).data,
                         "imported": result["imported"], "skipped": result["skipped"],
                         "unusable": [{"stem": stem, "reason": reason} for stem, reason in result["unusable"]]},
                        status=status.HTTP_201_CREATED)

    @extend_schema(request=ReviewManySerializer, responses=ReviewedSerializer)
    @action(detail=True, methods=["post"])
    def review(self, request, course_id, set_id):
        """Approve or reject many questions of a set that is not released (each change kept in its history)."""
        asked = body_of(request, ReviewManySerializer)
        changed = review.review_many(self.get_object(), asked["questions"], asked["review"], request.user)
        return Response({"changed": changed})

    @extend_schema(request=GradingSerializer, responses=QuestionSetSerializer)
    @action(detail=True, methods=["post"])
    def grading(self, request, course_id, set_id):
        """Set the grading rule and the attempts allowed (a graded set's gradebook scores are sent again)."""
        asked = body_of(request, GradingSerializer)
        question_set = practice.set_grading(self.get_object(), asked["grading"], asked["attempts_allowed"])
        return self._set(question_set)

    @extend_schema(responses=StatisticsSerializer)
    @action(detail=True, methods=["get"])
    def statistics(self, request, course_id, set_id):
        """Students' attempts at the set, its grades in the LMS and each question's item statistics."""
        question_set = self.get_object()
        students, items = item_statistics(question_set)
        return Response({**practice.attempt_stats(question_set), "graded": practice.is_graded(question_set),
                         "students": students, "min_students": item_stats.MIN_STUDENTS, "items": items})

    def _export(self, kind):
        question_set = self.get_object()
        if not question_set.is_released:
            raise Conflict(_("Only a released set can be exported."))
        return exports.download(question_set, kind)

    @extend_schema(responses={(200, "application/xml"): OpenApiTypes.STR,
                              (409, PROBLEM): ProblemSerializer})
    @action(detail=True, methods=["get"], url_path="export/moodle-xml", renderer_classes=[renderers.JSONRenderer,
                                                                                           ExportRenderer])
    def moodle_xml(self, request, course_id, set_id):
        """The released set's approved questions as a Moodle XML file (every kind)."""
        return self._export("xml")

    @extend_schema(responses={(200, "text/plain"): OpenApiTypes.STR,
                              (409, PROBLEM): ProblemSerializer})
    @action(detail=True, methods=["get"], url_path="export/gift", renderer_classes=[renderers.JSONRenderer,
                                                                                     ExportRenderer])
    def gift(self, request, course_id, set_id):
        """The released set's approved questions in Moodle's GIFT format."""
        return self._export("gift")


# Each kind of question keeps its own fields under "content"; a new kind adds its entry here.
QUESTION_CONTENT = {
    Question.SINGLE: ("options", "correct_index"),
    Question.MULTIPLE: ("options", "correct_indices"),
    Question.TRUE_FALSE: ("truth",),
    Question.SHORT: ("accepted_answers", "case_sensitive"),
    Question.OPEN: ("model_answer", "rubric"),
}


def question_content(question):
    """The fields of a question that belong to its kind."""
    return {name: getattr(question, name) for name in QUESTION_CONTENT.get(question.kind, ())}


class CheckSerializer(serializers.Serializer):
    """An automatic check of the question (form, grounded, duplicate, test student): passed or not, and why."""

    check = serializers.CharField()
    name = serializers.CharField(help_text="The check's name in the reader's language.")
    ok = serializers.BooleanField(allow_null=True)
    reason = serializers.CharField(help_text="The reason's code, e.g. ok, placeholder, unsupported, guessable.")
    text = serializers.CharField(help_text="What the check found, in the reader's language.")
    stale = serializers.BooleanField(help_text="Made before the question was last edited.")


class ChangeSerializer(serializers.Serializer):
    """One entry of a question's history: what was done, by whom, when, and each changed field's before/after."""

    action = serializers.CharField()
    label = serializers.CharField(help_text="The action in the reader's language.")
    user = serializers.IntegerField(source="user_id", allow_null=True)
    at = serializers.DateTimeField()
    changes = serializers.DictField(help_text="field -> [before, after]")


class QuestionSerializer(serializers.ModelSerializer):
    """One question: its kind, text, the fields of its kind under ``content`` (single choice: ``options`` and
    ``correct_index``, counting from 0; multiple answers: ``options`` and ``correct_indices``; true/false:
    ``truth``; short answer: ``accepted_answers`` and ``case_sensitive``; open: ``model_answer`` and ``rubric``),
    explanation, review state, its automatic checks with their reasons, origin and source passage."""

    content = serializers.SerializerMethodField()
    kind_label = serializers.CharField(source="get_kind_display", read_only=True)
    checks = serializers.SerializerMethodField()
    revising = serializers.BooleanField(source="is_revising", read_only=True,
                                        help_text="The model is rewriting a part of it now.")

    class Meta:
        model = Question
        fields = ["id", "position", "kind", "kind_label", "stem", "content", "explanation", "review", "edited",
                  "origin", "flagged", "checks", "revising", "source_chunk", "source_section", "updated_at"]
        read_only_fields = fields

    @extend_schema_field({"type": "object", "additionalProperties": True,
                          "example": {"options": ["0", "1", "42"], "correct_index": 1}})
    def get_content(self, question):
        return question_content(question)

    @extend_schema_field(CheckSerializer(many=True))
    def get_checks(self, question):
        return [{"check": c.get("check", ""), "name": str(item_checks.check_name(c.get("check"))), "ok": c.get("ok"),
                 "reason": c.get("reason") or "", "text": item_checks.describe(c), "stale": bool(c.get("stale"))}
                for c in question.checks or []]


class QuestionDetailSerializer(QuestionSerializer):
    """A question with its history (every change, newest first)."""

    history = serializers.SerializerMethodField()

    class Meta(QuestionSerializer.Meta):
        fields = [*QuestionSerializer.Meta.fields, "history"]
        read_only_fields = fields

    @extend_schema_field(ChangeSerializer(many=True))
    def get_history(self, question):
        changes = list(question.changes.all())
        for change in changes:
            change.label = review.change_label(change.action)
        return ChangeSerializer(changes, many=True).data


class QuestionChangeSerializer(serializers.Serializer):
    """A lecturer's change of a question: its text, the fields of its kind, explanation (checked like a generated
    question), and/or the review decision."""

    stem = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    content = serializers.DictField(required=False)
    explanation = serializers.CharField(required=False, allow_blank=True)
    review = serializers.ChoiceField(choices=Question.REVIEW, required=False)


class RewriteSerializer(serializers.Serializer):
    """What the model rewrites: a wrong option (``option:<index>``, counting from 0) or the explanation."""

    part = serializers.CharField(help_text="option:<index> or explanation")


@extend_schema(tags=["question sets"])
class QuestionViewSet(viewsets.GenericViewSet):
    """The questions of a set: read them (ETag), edit or review them (PATCH with If-Match: two lecturers may review
    the same set), have the model rewrite a wrong option or the explanation."""

    serializer_class = QuestionSerializer
    read_level = TEACH
    lookup_url_kwarg = "question_id"
    lookup_value_converter = "int"

    def get_queryset(self):
        return Question.objects.filter(question_set_id=self.kwargs["set_id"],
                                       question_set__course_id=self.kwargs["course_id"]).order_by("position")

    def get_object(self, queryset=None):
        return found(queryset if queryset is not None else self.get_queryset(),
                     _("This question does not exist in this set."), pk=self.kwargs["question_id"])

    def _detail(self, question):
        question = self.get_queryset().prefetch_related("changes").get(pk=question.pk)
        return with_etag(Response(QuestionDetailSerializer(question).data))

    def list(self, request, course_id, set_id):
        found(QuestionSet.objects.filter(course_id=course_id), _("This question set does not exist in this course."),
              pk=set_id)
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(QuestionSerializer(page, many=True).data)

    @extend_schema(responses=QuestionDetailSerializer)
    def retrieve(self, request, course_id, set_id, question_id):
        """A question with its checks and history."""
        return self._detail(self.get_object())

    @extend_schema(request=QuestionChangeSerializer, responses=QuestionDetailSerializer, parameters=[IF_MATCH])
    def partial_update(self, request, course_id, set_id, question_id):
        """Edit and/or review a question of a set that is not released (checked again; kept in its history)."""
        data = body_of(request, QuestionChangeSerializer)
        with transaction.atomic():
            question = self.get_object(self.get_queryset().select_related("question_set").prefetch_related("changes")
                                       .select_for_update(of=("self",)))
            check_if_match(request, QuestionDetailSerializer(question).data)
            if {"stem", "content", "explanation"} & set(data):
                content = {**question_content(question), **data.get("content", {})}
                review.edit_question(
                    question, data.get("stem", question.stem), content.get("options", []),
                    content.get("correct_index", ""), data.get("explanation", question.explanation),
                    user=request.user, correct_indices=content.get("correct_indices"), truth=content.get("truth"),
                    accepted_answers=content.get("accepted_answers"), case_sensitive=content.get("case_sensitive"),
                    model_answer=content.get("model_answer"), rubric=content.get("rubric"))
            if "review" in data:
                review.review_question(question, data["review"], request.user)
        return self._detail(question)

    @extend_schema(request=RewriteSerializer, responses={202: QuestionDetailSerializer})
    @action(detail=True, methods=["post"])
    def rewrite(self, request, course_id, set_id, question_id):
        """Have the model rewrite a wrong option or the explanation (queued; poll until ``revising`` is false)."""
        asked = body_of(request, RewriteSerializer)
        question = self.get_object(self.get_queryset().select_related("question_set"))
        generation.start_revision(question, asked["part"], request.user)
        response = self._detail(question)
        response.status_code = status.HTTP_202_ACCEPTED
        return response


# --- Whole-text runs -------------------------------------------------------------------------------------------

class GenerationRunSerializer(serializers.ModelSerializer):
    """Questions about many sections at once (a whole text, chapters): per section its task's state and set, the
    sections done and failed, and the questions asked for, made and dropped (and why)."""

    kinds = serializers.ListField(child=serializers.ChoiceField(choices=Question.KINDS), read_only=True)
    sections = serializers.IntegerField(help_text="Sections asked about.")
    queued = serializers.IntegerField()
    running = serializers.IntegerField()
    done = serializers.IntegerField()
    failed = serializers.IntegerField()
    finished = serializers.BooleanField(help_text="Every section is done or failed.")
    requested = serializers.IntegerField()
    made = serializers.IntegerField()
    dropped = serializers.IntegerField()
    dropped_reasons = ReasonCountSerializer(many=True)
    parts = PartSerializer(many=True)

    class Meta:
        model = GenerationRun
        fields = ["id", "title", "per_section", "kinds", "one_set", "created_at", "sections", "queued", "running",
                  "done", "failed", "finished", "requested", "made", "dropped", "dropped_reasons", "parts"]
        read_only_fields = fields


def run_data(run):
    """A run with its progress (tutor.questions.generation.progress over its parts, in the text's order)."""
    parts = described_parts(generation.run_parts(run))
    summary = generation.progress(parts)
    return {"id": run.pk, "title": run.title, "per_section": run.per_section, "kinds": run.kinds,
            "one_set": run.one_set, "created_at": run.created_at, **summary,
            "dropped_reasons": reason_counts(summary["reasons"]), "parts": parts}


class StartRunSerializer(serializers.Serializer):
    """What to generate: sections, whole chapters (``<document>:<first order>:<last order>``, as the section tree
    names them) and whole documents; questions per section of which kinds; a set per section or one set for all."""

    sections = serializers.ListField(child=serializers.IntegerField(), required=False, default=list)
    chapters = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    documents = serializers.ListField(child=serializers.IntegerField(), required=False, default=list)
    per_section = serializers.IntegerField(required=False, help_text=f"1 to {generation.MAX_PER_SECTION}.")
    kinds = serializers.MultipleChoiceField(choices=Question.KINDS, required=False, default=list,
                                            help_text="The kinds of question (none: single-answer choice).")
    one_set = serializers.BooleanField(required=False, default=False)
    title = serializers.CharField(required=False, allow_blank=True, default="", max_length=255)


@extend_schema(tags=["question sets"])
class GenerationRunViewSet(viewsets.GenericViewSet):
    """Questions about a whole text or chapters at once, a task per section: start a run, follow its progress (what
    the run's page polls), generate what is missing."""

    serializer_class = GenerationRunSerializer
    read_level = TEACH
    lookup_url_kwarg = "run_id"
    lookup_value_converter = "int"

    def get_queryset(self):
        return GenerationRun.objects.filter(course_id=self.kwargs["course_id"]).order_by("-created_at", "-id")

    def get_object(self):
        return found(self.get_queryset(), _("This generation run does not exist in this course."),
                     pk=self.kwargs["run_id"])

    def _run(self, run, **kwargs):
        return Response(GenerationRunSerializer(run_data(run)).data, **kwargs)

    def list(self, request, course_id):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response([GenerationRunSerializer(run_data(run)).data for run in page])

    @extend_schema(request=StartRunSerializer, responses={202: GenerationRunSerializer})
    def create(self, request, course_id):
        """Start a run (queued; poll it until ``finished``); a section that already has a released set gets none."""
        data = body_of(request, StartRunSerializer)
        course = request.grant.course
        sections = course_sections.chosen_sections(course, data["sections"], data["chapters"], data["documents"])
        run = generation.start_run(course, sections, data.get("per_section", ""), data["kinds"],
                                   one_set=data["one_set"], user=request.user, title=data["title"])
        return self._run(run, status=status.HTTP_202_ACCEPTED,
                         headers={"Location": reverse("api:course-generation-runs-detail", args=[course_id, run.pk])})

    def retrieve(self, request, course_id, run_id):
        """A run and its progress per section."""
        return self._run(self.get_object())

    @extend_schema(request=None, responses={202: GenerationRunSerializer, (409, PROBLEM): ProblemSerializer})
    @action(detail=True, methods=["post"])
    def rerun(self, request, course_id, run_id):
        """Generate again what the run's sections still miss (failed, stalled or short sections)."""
        run = self.get_object()
        if not generation.rerun(run):
            raise Conflict(_("Nothing is missing: every section has its questions or is being generated."))
        return self._run(run, status=status.HTTP_202_ACCEPTED)
