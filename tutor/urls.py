"""URLs of the tutor app: the course page with its chat, and the lecturer's tutor pages."""

from django.urls import path

from tutor import practice_views, question_views, views

app_name = "tutor"
urlpatterns = [
    path("c/<int:course_id>/", views.home, name="home"),
    path("c/<int:course_id>/ask/", views.ask, name="ask"),
    path("c/<int:course_id>/notice/", views.accept_notice, name="accept_notice"),
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
urlpatterns += question_views.urlpatterns + practice_views.urlpatterns  # question sets; practice
