"""Celery tasks of the chat: answering a question and the daily retention run (queue "chat" by name:
tutor.tasks.chat_*), and checking the tutor against the lecturer's test questions (named tutor.tasks.generate_*, so
routed to the batch queue "generate"). They take IDs and are idempotent; the names stay "tutor.tasks.*" (the routes
in CELERY_TASK_ROUTES match on them)."""

from celery import shared_task


# Deployed on a threads pool (answers wait on the model): Celery enforces no time limits there, so an answer is
# bounded by settings.CHAT_ANSWER_SECONDS (checked as pieces arrive) and the inference timeouts (a silent server).
# ignore_result: the answer lives in the database and Redis; a stored result would only cost a result-backend
# subscription per question in the web process and a write per answer in the worker.
@shared_task(name="tutor.tasks.chat_answer", acks_late=True, reject_on_worker_lost=True, ignore_result=True,
             soft_time_limit=300, time_limit=330)
def chat_answer(message_id, ui_language=None):
    """Ground, stream and save one answer (see tutor.chat.answering.answer); ui_language: the asking page's language."""
    from tutor.chat.answering import answer

    answer(message_id, ui_language)


@shared_task(name="tutor.tasks.chat_purge_conversations", acks_late=True, ignore_result=True)
def chat_purge_conversations():
    """Queue the daily retention run (config.privacy.purge_expired_data: chats past their course's retention,
    expired sessions, used nonces, orphaned files) on the ingest queue, whose workers have the files."""
    from config.tasks import purge_expired_data

    purge_expired_data.delay()


@shared_task(name="tutor.tasks.generate_test_checks", acks_late=True, reject_on_worker_lost=True, ignore_result=True,
             soft_time_limit=1800, time_limit=1860)
def generate_test_checks(course_id):
    """Ask the course tutor its lecturer's test questions and keep how it did (see tutor.chat.checks); idempotent."""
    from tutor.chat.checks import check_test_questions

    return check_test_questions(course_id)
