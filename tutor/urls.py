"""URLs of the tutor app (namespace "tutor"): the chat's pages (tutor.chat.urls), then the question bank's and the
practice pages (tutor.questions.urls)."""

from django.urls import include, path

app_name = "tutor"
urlpatterns = [
    path("", include("tutor.chat.urls")),
    path("", include("tutor.questions.urls")),
]
