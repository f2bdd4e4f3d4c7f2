"""Pages and endpoints of the tutor: the chat page, asking, the answer stream (SSE), feedback, settings, usage.

Thin views over tutor.chat.conversations (taking a question), tutor.chat.stream (relaying an answer) and
tutor.chat.payloads.

Every view passes the course access rule (courses.access.course_member, its async form for the chat's
async views); POST endpoints are checked against cross-site requests by Django's CsrfViewMiddleware.
"""

import logging

from django.conf import settings
from django.contrib import messages
from django.core.cache import cache
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from config.threads import db_in_thread
from courses.access import course_member, tool_url
from tutor.chat import conversations, notice, quotas, stream
from tutor.chat.models import Feedback, Message, TestQuestion
from tutor.chat.payloads import message_payload
from tutor.chat.usage import declined_topics, usage_report
from tutor.forms import FeedbackForm, TestQuestionForm, TutorConfigForm
from tutor.models import TutorConfig

log = logging.getLogger(__name__)


@never_cache
@course_member()
def home(request, course_id):
    """The chat page of a course: welcome, the conversation so far, the question box; teachers see their links."""
    try:
        conversation = conversations.conversation_for(request.course, request.user,
                                                      conversation_id=_int_or_none(request.GET.get("conversation")))
    except conversations.ChatError:
        raise Http404(_("This conversation does not exist.")) from None
    history = [message_payload(m)
               for m in conversation.messages.prefetch_related("citations").select_related("conversation")]
    config = TutorConfig.for_course(request.course)
    teaching = request.membership.is_teaching
    paragraphs = notice.pending(request.membership, config.retention_days)
    if paragraphs is not None:  # the student's first use: the AI-use notice before the chat
        return render(request, "tutor/notice.html", {
            "course": request.course, "paragraphs": paragraphs, "record_url": notice.processing_record_url()})
    return render(request, "tutor/home.html", {
        "course": request.course, "config": config, "history": history,
        "is_teaching": teaching, "conversation": conversation,
        "no_model": not (config.endpoint or settings.INFERENCE_URLS) and config.answers_with != TutorConfig.QUOTES_ONLY,
        "quota": quotas.summary(request.course, request.user),
        "setup": _setup(request.course) if teaching else None,
        "conversations": _with_urls(conversations.conversation_list(request.course, request.user), course_id),
        "new_url": tool_url("tutor:home", course_id),
        "welcome": config.welcome_message.strip() or _(
            "Hello! I answer questions about the texts of this course and show you where each answer comes from."),
        "client": {
            "ask_url": tool_url("tutor:ask", course_id),
            "stream_url": reverse("tutor:stream", args=[course_id, 0]),
            "feedback_url": reverse("tutor:feedback", args=[course_id, 0]),
            "retry_url": reverse("tutor:retry", args=[course_id, 0]),
            "conversation_id": conversation.pk,
            "text": {
                "thinking": _("The tutor is thinking…"), "sources": _("Sources"), "page": _("page"),
                "failed": _("The answer could not be completed."), "network": _("The connection was lost."),
                "thanks": _("Thank you for your feedback."), "comment": _("Optional comment (your teachers read it without your name)"),
                "send": _("Send"), "helpful": _("Helpful"), "unhelpful": _("Not helpful"),
                "retry": _("Try again"), "quoted": _("From the course texts"),
                "waiting": _("Waiting for its turn at the language model (questions ahead: %(count)s)…"),
            },
        },
    })


def _setup(course):
    """What a teacher sees on the chat page: how far the course's tutor is set up (texts, question sets)."""
    from courses.models import Document
    from tutor.questions.models import QuestionSet

    documents = Document.objects.filter(course=course)
    return {"documents": documents.count(), "ready": documents.ready().count(),
            "question_sets": QuestionSet.objects.filter(course=course).count()}


def _ask(request, course_id):
    """The work of the ask view (database and queue), run on the shared thread pool: the accepted question
    (a dict) or an error response."""
    membership = request.membership
    if notice.pending(membership, TutorConfig.for_course(membership.course).retention_days) is not None:
        return JsonResponse({"error": _("Please read and accept the notice about the tutor first (reload the "
                                        "page).")}, status=403)
    requested = (_int_or_none(request.POST["conversation"]) or 0) if request.POST.get("conversation") else None
    try:
        question, answer = conversations.ask_in(membership.course, membership.user, request.POST.get("text", ""),
                                                conversation_id=requested, new=bool(request.POST.get("new")))
    except conversations.RateLimited as exc:
        return JsonResponse({"error": str(exc)}, status=429)
    except conversations.ChatError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    return {"question": message_payload(question), "answer_id": answer.pk,
            "stream_url": tool_url("tutor:stream", course_id, answer.pk),
            "conversation_id": answer.conversation_id}


@require_POST
@course_member()
def accept_notice(request, course_id):
    """The student accepts the AI-use notice (POST) and goes on to the chat."""
    config = TutorConfig.for_course(request.course)
    notice.accept(request.user, notice.notice_paragraphs(config.retention_days))
    return redirect(tool_url("tutor:home", course_id))


def _with_urls(items, course_id):
    home_url = tool_url("tutor:home", course_id)
    for item in items:
        item["url"] = home_url + ("&" if "?" in home_url else "?") + f"conversation={item['id']}"
    return items


def _int_or_none(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _retry(request, course_id, message_id):
    try:
        answer = conversations.retry(request.course, request.user, message_id)
    except conversations.RateLimited as exc:
        return JsonResponse({"error": str(exc)}, status=429)
    except conversations.ChatError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse({"answer_id": answer.pk, "status": answer.status,
                         "stream_url": tool_url("tutor:stream", course_id, answer.pk)})


@require_POST
@course_member()
async def retry(request, course_id, message_id):
    """Answer a failed answer again (POST): returns the answer's stream like ask does."""
    return await db_in_thread(lambda: _retry(request, course_id, message_id))


@require_POST
@course_member()
async def ask(request, course_id):
    """Take a question (POST text).

    A client that accepts text/event-stream (the chat page) gets the answer in this same response: an
    "accepted" event (the question as shown, the answer's id and its own stream URL for resuming) and then
    the answer's events, as from the stream view; no second request, nothing read twice. Others get the
    accepted question as JSON and open the stream URL.
    """
    accepted = await db_in_thread(lambda: _ask(request, course_id))
    if not isinstance(accepted, dict):
        return accepted
    if "text/event-stream" not in request.headers.get("Accept", ""):
        return JsonResponse(accepted)

    return stream.event_stream(stream.accepted_events(accepted, course_id))


@never_cache
@course_member()
def message(request, course_id, message_id):
    """One message of the person's own conversation as JSON (its current state)."""
    found = get_object_or_404(Message.objects.select_related("conversation"), pk=message_id,
                              conversation__course_id=course_id, conversation__user=request.user)
    return JsonResponse(message_payload(found))


# --- The answer stream (tutor.chat.stream) ---------------------------------------------------------------

@course_member()
async def answer_stream(request, course_id, message_id):
    """Server-sent events of one answer, relayed from Redis pub/sub without holding a thread."""
    own = await db_in_thread(lambda: Message.objects.filter(
        pk=message_id, role=Message.ASSISTANT, conversation__course_id=course_id,
        conversation__user_id=request.membership.user_id).exists())
    if not own:
        raise Http404(_("This answer does not exist."))
    return stream.event_stream(stream.answer_events(message_id, course_id))


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
    """The lecturer's settings of the course tutor, its test questions and the questions it declined."""
    config = TutorConfig.for_course(request.course)
    if request.method == "POST":
        form = TutorConfigForm(request.POST, instance=config)
        if form.is_valid():
            form.save()
            messages.success(request, _("The tutor settings were saved."))
            return redirect(tool_url("tutor:settings", course_id))
    else:
        form = TutorConfigForm(instance=config)
    return _settings_page(request, form, TestQuestionForm())


def _settings_page(request, form, test_form):
    tests = list(TestQuestion.objects.filter(course=request.course))
    return render(request, "tutor/settings.html", {
        "course": request.course, "form": form, "test_form": test_form, "tests": tests,
        "checking": any(t.checked_at is None for t in tests) and cache.get(_checking_key(request.course.pk)),
        "declined": declined_topics(request.course.pk),
        "usage_min_students": settings.USAGE_MIN_STUDENTS})


def _checking_key(course_id):
    return f"tutor:test-check:{course_id}"


@require_POST
@course_member(teaching=True)
def add_test_question(request, course_id):
    """Add a test question (POST question, expected) to the course tutor's settings page."""
    test_form = TestQuestionForm(request.POST)
    if not test_form.is_valid():
        return _settings_page(request, TutorConfigForm(instance=TutorConfig.for_course(request.course)), test_form)
    test = test_form.save(commit=False)
    test.course = request.course
    test.save()
    return redirect(tool_url("tutor:settings", course_id) + "#tests")


@require_POST
@course_member(teaching=True)
def delete_test_question(request, course_id, test_id):
    """Remove one of the course's test questions."""
    TestQuestion.objects.filter(pk=test_id, course=request.course).delete()
    return redirect(tool_url("tutor:settings", course_id) + "#tests")


@require_POST
@course_member(teaching=True)
def check_test_questions(request, course_id):
    """Ask the tutor every test question again (queue "generate", as batch work beside the chat)."""
    from tutor.chat.tasks import generate_test_checks

    TestQuestion.objects.filter(course=request.course).update(checked_at=None)
    cache.set(_checking_key(course_id), True, timeout=3600)
    generate_test_checks.delay(course_id)
    messages.success(request, _("The tutor is answering the test questions; reload this page in a minute."))
    return redirect(tool_url("tutor:settings", course_id) + "#tests")


@never_cache
@course_member(teaching=True)
def usage(request, course_id):
    """Anonymised use of the tutor: questions per day, frequent topics, declined questions (gaps)."""
    return render(request, "tutor/usage.html", {"course": request.course, "report": usage_report(course_id)})
