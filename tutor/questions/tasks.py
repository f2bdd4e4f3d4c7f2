"""Celery tasks of the question bank and practice: question generation and grade passback (queue "generate" by
name: tutor.tasks.generate_*, tutor.tasks.grade_*). They take IDs and are idempotent; the names stay "tutor.tasks.*"
(the routes in CELERY_TASK_ROUTES match on them)."""

from celery import shared_task


@shared_task(name="tutor.tasks.generate_questions", acks_late=True, reject_on_worker_lost=True, ignore_result=True,
             soft_time_limit=900, time_limit=960)
def generate_questions(set_id):
    """Queue the question set's sections one task each (see generate_question_part); idempotent."""
    from tutor.questions.generation import enqueue, ensure_parts
    from tutor.questions.models import GenerationPart, QuestionSet

    found = QuestionSet.objects.filter(pk=set_id).first()
    queued = [p.pk for p in ensure_parts(found) if p.state == GenerationPart.QUEUED] if found is not None else []
    enqueue(queued)
    return len(queued)


@shared_task(name="tutor.tasks.generate_question_part", acks_late=True, reject_on_worker_lost=True,
             ignore_result=True, soft_time_limit=900, time_limit=960)
def generate_question_part(part_id):
    """Write what one section's questions of a set still miss (see tutor.questions.generation.generate_part); idempotent."""
    from tutor.questions.generation import generate_part

    return generate_part(part_id)


@shared_task(name="tutor.tasks.generate_revision", acks_late=True, reject_on_worker_lost=True, ignore_result=True,
             soft_time_limit=300, time_limit=330)
def generate_revision(question_id, what, user_id=None):
    """Rewrite one wrong option or the explanation of a question (see tutor.questions.generation.revise); idempotent."""
    from tutor.questions.generation import revise

    return revise(question_id, what, user_id)


GRADE_RETRIES = 10


@shared_task(name="tutor.tasks.grade_attempt", bind=True, acks_late=True, reject_on_worker_lost=True,
             ignore_result=True, max_retries=GRADE_RETRIES)
def grade_attempt(self, attempt_id):
    """Post one attempt's score to the LMS gradebook; retried with backoff while the LMS does not take it."""
    from tutor.questions.practice import GradeNotSent, grade_failed, send_grade

    try:
        return send_grade(attempt_id)
    except GradeNotSent as exc:
        if self.request.retries >= GRADE_RETRIES:
            return grade_failed(attempt_id, str(exc))
        raise self.retry(countdown=min(2 ** self.request.retries, 600)) from exc
