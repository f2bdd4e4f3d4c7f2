"""The API of the chat: the course's tutor settings, usage, and chat (ask and the answer stream as server-sent
events, the caller's conversations and messages, retry).

Thin views over the domain functions the pages use: tutor.chat.conversations and tutor.chat.stream for the chat (the
ask and the stream are async endpoints, as the chat page's are: config.api.event_stream_view), tutor.chat.usage, and
the settings page's form for its rules.
"""

from django.db import transaction
from django.forms.models import model_to_dict
from django.urls import reverse
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, renderers, serializers, status, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import (
    EventStreamRenderer,
    check_if_match,
    event_stream_view,
    with_etag,
)
from courses.access import READ, TEACH
from courses.api import found
from tutor.api import IF_MATCH, body_of
from tutor.chat import conversations, stream
from tutor.chat.models import Message
from tutor.chat.payloads import message_payload
from tutor.chat.usage import usage_report
from tutor.forms import TutorConfigForm
from tutor.models import TutorConfig


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


class QuoteSerializer(serializers.Serializer):
    """A sentence of the course texts that the tool quoted to open an answer, verbatim, with its passage."""

    text = serializers.CharField(help_text="The quoted sentence(s), exactly as in the passage.")
    number = serializers.IntegerField(help_text="The number of its passage among the answer's sources.")
    chunk = serializers.IntegerField(help_text="Its passage: /api/v1/courses/{course_id}/passages/{chunk}/.")
    start = serializers.IntegerField(help_text="Where the quote begins in the passage's text (characters).")
    end = serializers.IntegerField(help_text="Where it ends (exclusive).")
    title = serializers.CharField()
    section = serializers.CharField()
    page = serializers.IntegerField(allow_null=True)
    url = serializers.CharField(help_text="The reader view of the passage with the quote highlighted.")


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
    quotes = QuoteSerializer(many=True, help_text="The sentences of the course texts that open the answer.")


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
          "`quotes` (the sentences of the course texts that open the answer, before any text; not sent when the "
          "tutor answers by explanation only), `snapshot` (the text so far), `queue` (requests ahead at the model server), `delta` (a piece of the text) "
          "and `final` (the finished message, as GET messages/{message_id}/ gives it); a comment line every 15 s "
          "keeps it open.")


class ServerSentEventSerializer(serializers.Serializer):
    """One event of an answer's stream: its name, and its data as JSON text."""

    event = serializers.ChoiceField(choices=["accepted", "quotes", "snapshot", "queue", "delta", "final"])
    data = serializers.CharField(help_text="JSON: accepted as AcceptedSerializer; quotes {\"quotes\": [quote]}; "
                                           "snapshot and delta {\"text\"}; queue {\"ahead\"}; final as a message.")


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
