"""The API of the tutor app: tutor settings, usage, chat (ask and the answer stream as server-sent events, the
caller's conversations) and question sets (generate, status with what was asked for, made and dropped and why,
items of every kind with their checks and history, review, rewrite, grading rule, release, export, statistics).

Thin views over the domain functions the pages use: tutor.conversations and tutor.stream for the chat (the ask
and the stream are async endpoints, as the chat page's are: config.api.event_stream_view), tutor.questions,
tutor.generation, tutor.item_checks, tutor.practice, tutor.item_stats and tutor.exports for question sets,
tutor.usage, and the settings page's form for its rules.
"""

from django.db import transaction
from django.db.models import Count, Q
from django.forms.models import model_to_dict
from django.urls import reverse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import exceptions, parsers, renderers, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import (
    PROBLEM,
    Conflict,
    EventStreamRenderer,
    check_if_match,
    event_stream_view,
    with_etag,
)
from config.api_schema import ProblemSerializer
from courses.access import READ, TEACH
from courses.api import found
from courses.models import Section
from tutor import (
    conversations,
    exports,
    generation,
    imports,
    item_checks,
    item_stats,
    practice,
    questions,
    stream,
)
from tutor.forms import TutorConfigForm
from tutor.models import GenerationPart, GenerationRun, Message, Question, QuestionSet, TutorConfig
from tutor.payloads import message_payload
from tutor.usage import usage_report


def body_of(request, serializer_class):
    """The request's body checked by the serializer: its validated data (a 400 problem with each field's message
    otherwise)."""
    checked = serializer_class(data=request.data)
    checked.is_valid(raise_exception=True)
    return checked.validated_data


IF_MATCH = OpenApiParameter("If-Match", str, OpenApiParameter.HEADER, required=False,
                            description="The ETag the change is based on: 412 if it was changed since.")


# --- Tutor settings ------------------------------------------------------------------------------------------

class TutorSettingsSerializer(serializers.ModelSerializer):
    """The course tutor's settings: the fields of the settings page, checked by the same form."""

    class Meta:
        model = TutorConfig
        fields = TutorConfigForm._meta.fields


@extend_schema(tags=["settings"])
class SettingsView(APIView):
    """The tutor's settings of the course: teachers read them (ETag), change them with PATCH (If-Match)."""

    read_level = TEACH
    serializer_class = TutorSettingsSerializer

    def get(self, request, course_id):
        return with_etag(Response(TutorSettingsSerializer(TutorConfig.for_course(request.grant.course)).data))

    @extend_schema(request=TutorSettingsSerializer(partial=True), responses=TutorSettingsSerializer,
                   parameters=[IF_MATCH])
    def patch(self, request, course_id):
        """Change some settings; refused with the settings page's messages (per field under ``errors``)."""
        fields = TutorConfigForm._meta.fields
        if not isinstance(request.data, dict):
            raise exceptions.ValidationError(_("Please send the settings as an object of fields."))
        unknown = sorted(set(request.data) - set(fields))
        if unknown:
            raise exceptions.ValidationError({name: [_("This setting does not exist.")] for name in unknown})
        pk = TutorConfig.for_course(request.grant.course).pk
        with transaction.atomic():
            config = TutorConfig.objects.select_for_update().get(pk=pk)
            check_if_match(request, TutorSettingsSerializer(config).data)
            changes = {name: request.data.get(name) for name in request.data}
            form = TutorConfigForm({**model_to_dict(config, fields), **changes}, instance=config)
            if not form.is_valid():
                raise exceptions.ValidationError({name: [str(m) for m in errors] for name, errors in form.errors.items()})
            form.save()
        return with_etag(Response(TutorSettingsSerializer(config).data))


# --- Usage ---------------------------------------------------------------------------------------------------

class DayCountSerializer(serializers.Serializer):
    """Questions asked on one day."""

    day = serializers.DateField()
    questions = serializers.IntegerField()


class TopicSerializer(serializers.Serializer):
    """Words (or a pair: "apt + install") that at least ``min_students`` different people used, and how many."""

    words = serializers.CharField()
    students = serializers.IntegerField()


class UsageSerializer(serializers.Serializer):
    """The anonymised use of the tutor, as the lecturer's usage page shows it: counts, and words only where many
    people used them (never a question's text or a name)."""

    questions = serializers.IntegerField()
    helpful = serializers.IntegerField()
    unhelpful = serializers.IntegerField()
    per_day = DayCountSerializer(many=True)
    topics = TopicSerializer(many=True)
    declined = TopicSerializer(many=True, help_text="Topics of the questions the course texts could not answer.")
    declined_count = serializers.IntegerField(help_text="Questions the course texts could not answer.")
    min_students = serializers.IntegerField(help_text="People who must have used a word before it is shown.")
    comments = serializers.ListField(child=serializers.CharField())


@extend_schema(tags=["usage"])
class UsageView(APIView):
    """Anonymised use of the course's tutor: questions per day (30 days), frequent topics, the topics of declined
    questions, feedback."""

    read_level = TEACH

    @extend_schema(responses=UsageSerializer)
    def get(self, request, course_id):
        report = usage_report(course_id)
        return Response(UsageSerializer({
            **report,
            "per_day": [{"day": day, "questions": n} for day, n in report["per_day"]],
            "topics": [{"words": words, "students": n} for words, n in report["topics"]],
            "declined": [{"words": words, "students": n} for words, n in report["declined"]],
        }).data)


# --- Chat ----------------------------------------------------------------------------------------------------

class CitationSerializer(serializers.Serializer):
    """A numbered source of an answer; its passage is /api/v1/courses/{course_id}/passages/{chunk}/."""

    number = serializers.IntegerField()
    chunk = serializers.IntegerField()
    title = serializers.CharField()
    section = serializers.CharField()
    page = serializers.IntegerField(allow_null=True)
    cited = serializers.BooleanField(help_text="The answer refers to it by its number.")
    url = serializers.CharField(help_text="The reader view of the passage (a page of the tool).")


class MessageSerializer(serializers.Serializer):
    """A question or an answer as the chat page shows it: sanitized HTML, state, numbered sources."""

    id = serializers.IntegerField()
    role = serializers.ChoiceField(choices=Message.ROLES)
    status = serializers.ChoiceField(choices=Message.STATUSES)
    html = serializers.CharField()
    declined = serializers.BooleanField(help_text="Nothing relevant was found in the course texts.")
    error = serializers.CharField(help_text="Why the answer failed, in the reader's language.")
    error_code = serializers.CharField()
    citations = CitationSerializer(many=True)


class ConversationSerializer(serializers.Serializer):
    """One of the caller's conversations, titled by its first question."""

    id = serializers.IntegerField()
    title = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class ConversationDetailSerializer(ConversationSerializer):
    """A conversation with its messages in order."""

    messages = MessageSerializer(many=True)


@extend_schema(tags=["chat"])
class ConversationViewSet(viewsets.GenericViewSet):
    """The caller's own conversations with the course's tutor (an API token's are its user's)."""

    serializer_class = ConversationSerializer
    lookup_url_kwarg = "conversation_id"
    lookup_value_converter = "int"

    def get_queryset(self):
        return conversations.titled_conversations(self.request.grant.course, self.request.user)

    def list(self, request, course_id):
        """The caller's conversations, newest first."""
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(ConversationSerializer(page, many=True).data)

    @extend_schema(responses=ConversationDetailSerializer)
    def retrieve(self, request, course_id, conversation_id):
        """One conversation with its questions and answers."""
        conversation = found(self.get_queryset(), _("This conversation does not exist."), pk=conversation_id)
        messages = [message_payload(m) for m in
                    conversation.messages.prefetch_related("citations").select_related("conversation")]
        return Response(dict(ConversationSerializer(conversation).data, messages=messages))


def own_answers(request, course_id):
    """The caller's answers in the course (never another person's)."""
    return Message.objects.select_related("conversation").filter(
        role=Message.ASSISTANT, conversation__course_id=course_id, conversation__user_id=request.user.pk)


@extend_schema(tags=["chat"])
class MessageView(APIView):
    """One of the caller's messages in its current state (an answer: streaming, done or failed)."""

    @extend_schema(responses=MessageSerializer)
    def get(self, request, course_id, message_id):
        mine = Message.objects.select_related("conversation").filter(
            conversation__course_id=course_id, conversation__user_id=request.user.pk)
        return Response(message_payload(found(mine, _("This message does not exist."), pk=message_id)))


class AskSerializer(serializers.Serializer):
    """A question for the tutor, into a new conversation, the caller's own one by id, or else their latest."""

    text = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)
    conversation = serializers.IntegerField(required=False, allow_null=True, default=None)
    new = serializers.BooleanField(required=False, default=False)


class AcceptedSerializer(serializers.Serializer):
    """A question taken: as shown, the answer's id and the URL of its stream, the conversation."""

    question = MessageSerializer()
    answer_id = serializers.IntegerField()
    stream_url = serializers.CharField()
    conversation_id = serializers.IntegerField()


EVENTS = ("A stream of server-sent events (the schema describes each event): `accepted` (as the JSON answer), then "
          "`snapshot` (the text so far), `queue` (requests ahead at the model server), `delta` (a piece of the text) "
          "and `final` (the finished message, as GET messages/{message_id}/ gives it); a comment line every 15 s "
          "keeps it open.")


class ServerSentEventSerializer(serializers.Serializer):
    """One event of an answer's stream: its name, and its data as JSON text."""

    event = serializers.ChoiceField(choices=["accepted", "snapshot", "queue", "delta", "final"])
    data = serializers.CharField(help_text="JSON: accepted as AcceptedSerializer; snapshot and delta {\"text\"}; "
                                           "queue {\"ahead\"}; final as a message.")


@extend_schema(tags=["chat"])
class AskView(APIView):
    """Ask the course's tutor: the question is stored and its answer queued. A client that accepts
    text/event-stream gets the answer in this same response, as the chat page does; others get 202 with the
    answer's stream URL. Limited to CHAT_RATE_LIMIT questions per person and window (429, Retry-After)."""

    write_level = READ
    renderer_classes = [renderers.JSONRenderer, EventStreamRenderer]

    @extend_schema(request=AskSerializer, responses={
        (202, "application/json"): AcceptedSerializer,
        (200, "text/event-stream"): OpenApiResponse(ServerSentEventSerializer, description=EVENTS)})
    def post(self, request, course_id):
        asked = body_of(request, AskSerializer)
        question, answer = conversations.ask_in(request.grant.course, request.user, asked["text"],
                                                conversation_id=asked["conversation"], new=asked["new"])
        response = Response({"question": message_payload(question), "answer_id": answer.pk,
                             "stream_url": reverse("api:course-message-stream", args=[course_id, answer.pk]),
                             "conversation_id": answer.conversation_id}, status=status.HTTP_202_ACCEPTED)
        return response


def _answer_in_same_response(request, response, course_id):
    if "text/event-stream" not in request.headers.get("Accept", ""):
        return None
    return stream.event_stream(stream.accepted_events(response.data, course_id))


ask = event_stream_view(AskView, _answer_in_same_response)


@extend_schema(tags=["chat"])
class AnswerStreamView(APIView):
    """One of the caller's answers as server-sent events: what was streamed so far, then the live pieces, then the
    final message (or at once the final message of a finished answer). Reopen it after a dropped connection."""

    renderer_classes = [EventStreamRenderer, renderers.JSONRenderer]

    @extend_schema(responses={(200, "text/event-stream"): OpenApiResponse(ServerSentEventSerializer, description=EVENTS)})
    def get(self, request, course_id, message_id):
        answer = found(own_answers(request, course_id), _("This answer does not exist."), pk=message_id)
        response = Response(status=status.HTTP_200_OK)
        response.answer_id = answer.pk
        return response


def _answer_events(request, response, course_id, message_id):
    return stream.event_stream(stream.answer_events(response.answer_id, course_id))


answer_stream = event_stream_view(AnswerStreamView, _answer_events)


class RetriedSerializer(serializers.Serializer):
    """An answer queued again, and the URL of its stream."""

    answer_id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=Message.STATUSES)
    stream_url = serializers.CharField()


@extend_schema(tags=["chat"])
class RetryView(APIView):
    """Answer one of the caller's failed answers again (counts against the rate limit)."""

    write_level = READ

    @extend_schema(request=None, responses={202: RetriedSerializer})
    def post(self, request, course_id, message_id):
        answer = conversations.retry(request.grant.course, request.user, message_id)
        return Response({"answer_id": answer.pk, "status": answer.status,
                         "stream_url": reverse("api:course-message-stream", args=[course_id, answer.pk])},
                        status=status.HTTP_202_ACCEPTED)


# --- Question sets ---------------------------------------------------------------------------------------------

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
        return questions.sections_of(self.request.grant.course)

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
    """{reason code: count} as the API's list of reasons with their words (tutor.generation.reason_label)."""
    return [{"reason": code, "label": generation.reason_label(code), "count": n} for code, n in reasons.items()]


def described_parts(parts):
    """The parts with their failure and drop reasons worded for the reader (for PartSerializer)."""
    parts = list(parts)
    for part in parts:
        part.error_text = questions.part_error(part)
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
        return questions.error_message(question_set)

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
    count = serializers.IntegerField(required=False, help_text=f"1 to {questions.MAX_QUESTIONS}.")
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
    """One question's statistics over each student's first attempt (tutor.item_stats)."""

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
    """tutor.item_stats' statistics of the set as the API gives them (question ids, options and flags as objects)."""
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
        question_set = questions.start_generation(request.grant.course, data["sections"], data.get("count", ""),
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
        return self._set(questions.release(self.get_object()))

    @extend_schema(request=None, responses={202: QuestionSetSerializer})
    @action(detail=True, methods=["post"])
    def retry(self, request, course_id, set_id):
        """Generate what the set still misses (after a failure, a stalled generation, or fewer questions made than
        asked for)."""
        question_set = self.get_object()
        questions.retry_generation(question_set)
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
        changed = questions.review_many(self.get_object(), asked["questions"], asked["review"], request.user)
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
            change.label = questions.change_label(change.action)
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
                questions.edit_question(
                    question, data.get("stem", question.stem), content.get("options", []),
                    content.get("correct_index", ""), data.get("explanation", question.explanation),
                    user=request.user, correct_indices=content.get("correct_indices"), truth=content.get("truth"),
                    accepted_answers=content.get("accepted_answers"), case_sensitive=content.get("case_sensitive"),
                    model_answer=content.get("model_answer"), rubric=content.get("rubric"))
            if "review" in data:
                questions.review_question(question, data["review"], request.user)
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
    """A run with its progress (tutor.generation.progress over its parts, in the text's order)."""
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
        sections = generation.chosen_sections(course, data["sections"], data["chapters"], data["documents"])
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
