"""Celery tasks of the tutor's chat (queue "chat" by name: tutor.tasks.chat_*); they take IDs and are idempotent."""

from celery import shared_task


# ignore_result: the answer lives in the database and Redis; a stored result would only cost a result-backend
# subscription per question in the web process and a write per answer in the worker.
@shared_task(name="tutor.tasks.chat_answer", acks_late=True, reject_on_worker_lost=True, ignore_result=True,
             soft_time_limit=300, time_limit=330)
def chat_answer(message_id):
    """Ground, stream and save one answer (see tutor.chat.answer)."""
    from tutor.chat import answer

    answer(message_id)


@shared_task(name="tutor.tasks.chat_purge_conversations", acks_late=True, ignore_result=True)
def chat_purge_conversations():
    """Delete chat messages past their course's retention (queued once a day by the chat workers)."""
    from tutor.retention import purge_conversations

    return purge_conversations()
