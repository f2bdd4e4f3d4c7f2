"""Privacy of chat data: retention per course, and one person's data exported or deleted on request."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from courses.models import Course
from tests.support import make_member
from tutor.chat.models import Citation, Conversation, Feedback, Message
from tutor.chat.retention import delete_user_data, export_user_data, purge_conversations
from tutor.models import TutorConfig

pytestmark = pytest.mark.django_db


def chat_with(course, user, *texts, age_days=0):
    conversation = Conversation.objects.create(course=course, user=user)
    for text in texts:
        message = Message.objects.create(conversation=conversation, role=Message.USER, text=text)
        Message.objects.filter(pk=message.pk).update(created_at=timezone.now() - timedelta(days=age_days))
    return conversation


def test_purge_deletes_only_what_is_older_than_the_course_retention():
    short, default = Course.objects.create(title="Kurz"), Course.objects.create(title="Normal")
    TutorConfig.objects.create(course=short, retention_days=7)
    user, _ = make_member(short)
    chat_with(short, user, "alt", age_days=10)
    chat_with(short, user, "neu", age_days=1)
    chat_with(default, user, "zehn Tage alt", age_days=10)
    counts = purge_conversations()
    assert counts["messages"] == 1
    assert sorted(Message.objects.values_list("text", flat=True)) == ["neu", "zehn Tage alt"]
    out = StringIO()
    call_command("purge_conversations", stdout=out)
    assert "Deleted 0 messages" in out.getvalue()


def test_export_and_delete_one_persons_chat_data():
    course = Course.objects.create(title="Betriebssysteme")
    user, _ = make_member(course)
    other, _ = make_member(course)
    conversation = chat_with(course, user, "Was ist PID 1?")
    answer = Message.objects.create(conversation=conversation, role=Message.ASSISTANT, text="Init [1]")
    Citation.objects.create(message=answer, number=1, chunk_id=5, document_title="Skript", page=2)
    Feedback.objects.create(message=answer, rating=Feedback.UP, comment="danke")
    chat_with(course, other, "Fremde Frage")

    data = export_user_data(user.pk)
    messages = data["conversations"][0]["messages"]
    assert [m["text"] for m in messages] == ["Was ist PID 1?", "Init [1]"]
    assert messages[1]["sources"][0]["document"] == "Skript" and messages[1]["feedback"]["comment"] == "danke"
    assert "Fremde Frage" not in json.dumps(data)
    out = StringIO()
    call_command("export_user_data", str(user.pk), stdout=out)
    assert json.loads(out.getvalue())["conversations"][0]["course"] == "Betriebssysteme"

    assert delete_user_data(user.pk) == {"conversations": 1, "messages": 2, "attempts": 0}
    assert not Feedback.objects.exists() and not Citation.objects.exists()
    assert Message.objects.get().text == "Fremde Frage"
    out = StringIO()
    call_command("delete_user_data", str(other.pk), stdout=out)
    assert "Deleted 1 conversations" in out.getvalue() and not Message.objects.exists()
