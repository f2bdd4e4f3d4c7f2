"""URLs of the chat: the course page with its chat, asking, the answer and its stream, feedback, retry, and the
lecturer's tutor settings (with test questions) and usage pages."""

from django.urls import path

from tutor.chat import views

urlpatterns = [
    path("c/<int:course_id>/", views.home, name="home"),
    path("c/<int:course_id>/ask/", views.ask, name="ask"),
    path("c/<int:course_id>/m/<int:message_id>/", views.message, name="message"),
    path("c/<int:course_id>/m/<int:message_id>/stream/", views.answer_stream, name="stream"),
    path("c/<int:course_id>/m/<int:message_id>/feedback/", views.feedback, name="feedback"),
    path("c/<int:course_id>/m/<int:message_id>/retry/", views.retry, name="retry"),
    path("c/<int:course_id>/settings/", views.tutor_settings, name="settings"),
    path("c/<int:course_id>/settings/tests/", views.add_test_question, name="add_test"),
    path("c/<int:course_id>/settings/tests/<int:test_id>/delete/", views.delete_test_question, name="delete_test"),
    path("c/<int:course_id>/settings/tests/check/", views.check_test_questions, name="check_tests"),
    path("c/<int:course_id>/usage/", views.usage, name="usage"),
]
