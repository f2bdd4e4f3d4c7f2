"""Pages and endpoints of the tutor: the chat page, asking, the answer stream (SSE), feedback, settings, usage.

Every view passes the course access rule (courses.access.course_member, its async form for the chat's
async views): POST endpoints need the launch token (form field ``lt`` or header ``X-Launch-Token``).
"""

import asyncio
import json
import logging

from django.conf import settings
from django.contrib import messages
from django.http import Http404, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from config.threads import db_in_thread
from courses.access import course_member, tool_url
from tutor import chat
from tutor.forms import FeedbackForm, TutorConfigForm
from tutor.models import Feedback, Message, TutorConfig
from tutor.relay import relay
from tutor.usage import usage_report

log = logging.getLogger(__name__)
KEEPALIVE_SECONDS = 15


@never_cache
@course_member()
def home(request, course_id):
    """The chat page of a course: welcome, the conversation so far, the question box; teachers see their links."""
    try:
        conversation = chat.conversation_for(request.course, request.user,
                                             conversation_id=_int_or_none(request.GET.get("conversation")))
    except chat.ChatError:
        raise Http404(_("This conversation does not exist.")) from None
    history = [chat.message_payload(m, request.launch_token)
               for m in conversation.messages.prefetch_related("citations").select_related("conversation")]
    config = TutorConfig.for_course(request.course)
    return render(request, "tutor/home.html", {
        "course": request.course, "config": config, "history": history,
        "is_teaching": request.membership.is_teaching, "conversation": conversation,
        "conversations": _with_urls(chat.conversation_list(request.course, request.user), course_id,
                                    request.launch_token),
        "new_url": tool_url("tutor:home", course_id, token=request.launch_token),
        "welcome": config.welcome_message.strip() or _(
            "Hello! I answer questions about the texts of this course and show you where each answer comes from."),
        "client": {
            "ask_url": tool_url("tutor:ask", course_id, token=request.launch_token),
            "stream_url": reverse("tutor:stream", args=[course_id, 0]),
            "feedback_url": reverse("tutor:feedback", args=[course_id, 0]),
            "retry_url": reverse("tutor:retry", args=[course_id, 0]),
            "conversation_id": conversation.pk,
            "token": request.launch_token,
            "text": {
                "thinking": _("The tutor is thinking…"), "sources": _("Sources"), "page": _("page"),
                "failed": _("The answer could not be completed."), "network": _("The connection was lost."),
                "thanks": _("Thank you for your feedback."), "comment": _("Optional comment"),
                "send": _("Send"), "helpful": _("Helpful"), "unhelpful": _("Not helpful"),
                "retry": _("Try again"),
            },
        },
    })


def _ask(request, course_id):
    """The work of the ask view (database and queue), run on the shared thread pool: the accepted question
    (a dict) or an error response."""
    membership, token = request.membership, request.launch_token
    try:
        conversation = None
        if request.POST.get("new"):
            conversation = chat.conversation_for(membership.course, membership.user, new=True)
        elif request.POST.get("conversation"):
            conversation = chat.conversation_for(membership.course, membership.user,
                                                 conversation_id=_int_or_none(request.POST["conversation"]) or -1)
        question, answer = chat.ask(membership.course, membership.user, request.POST.get("text", ""),
                                    conversation=conversation)
    except chat.RateLimited as exc:
        return JsonResponse({"error": str(exc)}, status=429)
    except chat.ChatError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    return {"question": chat.message_payload(question, token), "answer_id": answer.pk,
            "stream_url": tool_url("tutor:stream", course_id, answer.pk, token=token),
            "conversation_id": answer.conversation_id, "token": token}


def _with_urls(conversations, course_id, token):
    home_url = tool_url("tutor:home", course_id, token=token)
    for item in conversations:
        item["url"] = home_url + ("&" if "?" in home_url else "?") + f"conversation={item['id']}"
    return conversations


def _int_or_none(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _retry(request, course_id, message_id):
    try:
        answer = chat.retry(request.course, request.user, message_id)
    except chat.RateLimited as exc:
        return JsonResponse({"error": str(exc)}, status=429)
    except chat.ChatError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse({"answer_id": answer.pk, "status": answer.status,
                         "stream_url": tool_url("tutor:stream", course_id, answer.pk, token=request.launch_token)})


@require_POST
@course_member()
async def retry(request, course_id, message_id):
    """Answer a failed answer again (POST, launch token): returns the answer's stream like ask does."""
    return await db_in_thread(lambda: _retry(request, course_id, message_id))


@require_POST
@course_member()
async def ask(request, course_id):
    """Take a question (POST text, launch token).

    A client that accepts text/event-stream (the chat page) gets the answer in this same response: an
    "accepted" event (the question as shown, the answer's id and its own stream URL for resuming) and then
    the answer's events, as from the stream view; no second request, nothing read twice. Others get the
    accepted question as JSON and open the stream URL.
    """
    accepted = await db_in_thread(lambda: _ask(request, course_id))
    if not isinstance(accepted, dict):
        return accepted
    token = accepted.pop("token")
    if "text/event-stream" not in request.headers.get("Accept", ""):
        return JsonResponse(accepted)

    async def events():
        yield _sse("accepted", accepted)
        async for event in answer_events(accepted["answer_id"], token, fresh=True):
            yield event

    return _event_stream(events())


@never_cache
@course_member()
def message(request, course_id, message_id):
    """One message of the person's own conversation as JSON (its current state)."""
    found = get_object_or_404(Message.objects.select_related("conversation"), pk=message_id,
                              conversation__course_id=course_id, conversation__user=request.user)
    return JsonResponse(chat.message_payload(found, request.launch_token))


# --- The answer stream ----------------------------------------------------------------------------

def _sse(event, data):
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


def _final_payload(message_id, token):
    found = Message.objects.select_related("conversation").get(pk=message_id)
    return chat.message_payload(found, token)


def _translated(final, language):
    """A final payload the chat worker published, with its error text in the reader's language."""
    if final.get("error_code"):
        with translation.override(language):
            final["error"] = chat.error_text(final["error_code"])
    return final


async def answer_events(message_id, token, *, fresh=False):
    """The SSE events of one answer: a snapshot of what exists, then each new piece, then the final message.

    The chat worker publishes the final message with the end of the answer (and keeps it in Redis for a stream
    opened after that), so a live answer is relayed without reading the database; fresh=True (the answer was
    queued by this very request) skips the database also for its state.
    """
    hub = relay()
    channel = chat.channel(message_id)
    language = translation.get_language()
    queue = await hub.subscribe(channel)
    try:
        buffered, final = await hub.mget(chat.buffer_key(message_id), chat.final_key(message_id))
        if final:
            yield _sse("final", _translated(json.loads(final), language))
            return
        if not fresh:
            status = await db_in_thread(
                lambda: Message.objects.filter(pk=message_id).values_list("status", flat=True)[0])
            if status in (Message.DONE, Message.FAILED):
                yield _sse("final", await db_in_thread(lambda: _final_payload(message_id, token)))
                return
        buffered = (buffered or b"").decode()
        sent = len(buffered)
        yield _sse("snapshot", {"text": buffered})
        loop = asyncio.get_running_loop()
        last_activity = loop.time()
        while True:
            try:
                raw = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
            except TimeoutError:
                if loop.time() - last_activity > settings.CHAT_STREAM_TIMEOUT:
                    await db_in_thread(lambda: chat.fail_if_unfinished(message_id))
                    yield _sse("final", await db_in_thread(lambda: _final_payload(message_id, token)))
                    return
                yield ": keepalive\n\n"
                continue
            last_activity = loop.time()
            data = json.loads(raw)
            if data["t"] == "delta":
                end, text = data["end"], data["text"]
                if end <= sent:
                    continue
                piece = text[len(text) - (end - sent):]
                sent = end
                yield _sse("delta", {"text": piece})
            elif data["t"] == "reset":
                sent = 0
                yield _sse("snapshot", {"text": ""})
            elif data["t"] == "end":
                if "message" in data:
                    yield _sse("final", _translated(data["message"], language))
                else:  # ended without its payload (a crashed answer): read it
                    yield _sse("final", await db_in_thread(lambda: _final_payload(message_id, token)))
                return
    finally:
        await hub.unsubscribe(channel, queue)


@course_member()
async def stream(request, course_id, message_id):
    """Server-sent events of one answer, relayed from Redis pub/sub without holding a thread."""
    own = await db_in_thread(lambda: Message.objects.filter(
        pk=message_id, role=Message.ASSISTANT, conversation__course_id=course_id,
        conversation__user_id=request.membership.user_id).exists())
    if not own:
        raise Http404(_("This answer does not exist."))
    return _event_stream(answer_events(message_id, request.launch_token))


def _event_stream(events):
    response = StreamingHttpResponse(events, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return response


# --- Feedback, settings, usage ----------------------------------------------------------------------

@require_POST
@course_member()
def feedback(request, course_id, message_id):
    """Thumbs up or down (POST rating=up|down, optional comment) on one of the person's answers."""
    found = get_object_or_404(Message, pk=message_id, role=Message.ASSISTANT, conversation__course_id=course_id,
                              conversation__user=request.user)
    form = FeedbackForm(request.POST)
    if not form.is_valid():
        return JsonResponse({"error": _("Please choose thumbs up or thumbs down.")}, status=400)
    Feedback.objects.update_or_create(message=found, defaults={
        "rating": Feedback.UP if form.cleaned_data["rating"] == "up" else Feedback.DOWN,
        "comment": form.cleaned_data["comment"]})
    return JsonResponse({"ok": True})


@never_cache
@course_member(teaching=True)
def tutor_settings(request, course_id):
    """The lecturer's settings of the course tutor."""
    config = TutorConfig.for_course(request.course)
    if request.method == "POST":
        form = TutorConfigForm(request.POST, instance=config)
        if form.is_valid():
            form.save()
            messages.success(request, _("The tutor settings were saved."))
            return redirect(tool_url("tutor:settings", course_id, token=request.launch_token))
    else:
        form = TutorConfigForm(instance=config)
    return render(request, "tutor/settings.html", {"course": request.course, "form": form})


@never_cache
@course_member(teaching=True)
def usage(request, course_id):
    """Anonymised use of the tutor: questions per day, frequent topics, declined questions (gaps)."""
    return render(request, "tutor/usage.html", {"course": request.course, "report": usage_report(course_id)})
