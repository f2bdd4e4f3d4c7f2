"""Celery tasks of the tutor's chat (queue "chat" by name: tutor.tasks.chat_*); they take IDs and are idempotent."""

from celery import shared_task
from django.db import InterfaceError, OperationalError


# Deployed on a threads pool (answers wait on the model): Celery enforces no time limits there, so an answer is
# bounded by settings.CHAT_ANSWER_SECONDS (checked as pieces arrive) and the inference timeouts (a silent server).
# ignore_result: the answer lives in the database and Redis; a stored result would only cost a result-backend
# subscription per question in the web process and a write per answer in the worker.
@shared_task(name="tutor.tasks.chat_answer", acks_late=True, reject_on_worker_lost=True, ignore_result=True,
             soft_time_limit=300, time_limit=330)
def chat_answer(message_id, ui_language=None):
    """Ground, stream and save one answer (see tutor.answering.answer); ui_language: the asking page's language."""
    from tutor.answering import answer

    answer(message_id, ui_language)


@shared_task(name="tutor.tasks.chat_purge_conversations", acks_late=True, ignore_result=True)
def chat_purge_conversations():
    """Queue the daily retention run (config.privacy.purge_expired_data: chats past their course's retention,
    expired sessions, used nonces, orphaned files) on the ingest queue, whose workers have the files."""
    from config.tasks import purge_expired_data

    purge_expired_data.delay()


# --- Practice: question generation and grade passback (queue "generate", see CELERY_TASK_ROUTES) ----------

@shared_task(name="tutor.tasks.generate_questions", acks_late=True, reject_on_worker_lost=True, ignore_result=True,
             soft_time_limit=900, time_limit=960)
def generate_questions(set_id):
    """Queue the question set's sections one task each (see generate_question_part); idempotent."""
    from tutor.generation import enqueue, ensure_parts
    from tutor.models import GenerationPart, QuestionSet

    found = QuestionSet.objects.filter(pk=set_id).first()
    queued = [p.pk for p in ensure_parts(found) if p.state == GenerationPart.QUEUED] if found is not None else []
    enqueue(queued)
    return len(queued)


# A database that does not answer in time (a busy machine) is retried: the tasks are idempotent.
DATABASE_RETRY = {"autoretry_for": (OperationalError, InterfaceError), "retry_backoff": 5, "max_retries": 3}


@shared_task(name="tutor.tasks.generate_question_part", acks_late=True, reject_on_worker_lost=True,
             ignore_result=True, soft_time_limit=900, time_limit=960, **DATABASE_RETRY)
def generate_question_part(part_id):
    """Write what one section's questions of a set still miss (see tutor.generation.generate_part); idempotent."""
    from tutor.generation import generate_part

    return generate_part(part_id)


@shared_task(name="tutor.tasks.generate_revision", acks_late=True, reject_on_worker_lost=True, ignore_result=True,
             soft_time_limit=300, time_limit=330)
def generate_revision(question_id, what, user_id=None):
    """Rewrite one wrong option or the explanation of a question (see tutor.generation.revise); idempotent."""
    from tutor.generation import revise

    return revise(question_id, what, user_id)


@shared_task(name="tutor.tasks.generate_test_checks", acks_late=True, reject_on_worker_lost=True, ignore_result=True,
             soft_time_limit=1800, time_limit=1860)
def generate_test_checks(course_id):
    """Ask the course tutor its lecturer's test questions and keep how it did (see tutor.checks); idempotent."""
    from tutor.checks import check_test_questions

    return check_test_questions(course_id)


@shared_task(name="tutor.tasks.generate_open_feedback", acks_late=True, reject_on_worker_lost=True,
             ignore_result=True, soft_time_limit=900, time_limit=960, **DATABASE_RETRY)
def generate_open_feedback(attempt_id, question_id):
    """Write the model's feedback on one open answer of an attempt (see tutor.open_feedback.write_feedback);
    idempotent."""
    from tutor.open_feedback import write_feedback

    return write_feedback(attempt_id, question_id)


GRADE_RETRIES = 10


@shared_task(name="tutor.tasks.grade_attempt", bind=True, acks_late=True, reject_on_worker_lost=True,
             ignore_result=True, max_retries=GRADE_RETRIES)
def grade_attempt(self, attempt_id):
    """Post one attempt's score to the LMS gradebook; retried with backoff while the LMS does not take it."""
    from tutor.practice import GradeNotSent, grade_failed, send_grade

    try:
        return send_grade(attempt_id)
    except GradeNotSent as exc:
        if self.request.retries >= GRADE_RETRIES:
            return grade_failed(attempt_id, str(exc))
        raise self.retry(countdown=min(2 ** self.request.retries, 600)) from exc
