"""The tutor's Celery tasks, for the worker's autodiscovery (config.celery imports each app's ``tasks``): the
chat's (tutor.chat.tasks) and the question bank's (tutor.questions.tasks). Their names stay "tutor.tasks.*"."""

from tutor.chat.tasks import chat_answer, chat_purge_conversations, generate_test_checks  # noqa: F401
from tutor.questions.tasks import (  # noqa: F401
    generate_question_part,
    generate_questions,
    generate_revision,
    grade_attempt,
)
