"""The tutor app's configuration: one app (label "tutor") in three rooms, tutor.chat, tutor.questions and
tutor.inference."""

from django.apps import AppConfig


class TutorAppConfig(AppConfig):
    """The tutor app: its rooms (chat, questions, inference) share the app label "tutor"."""

    name = "tutor"

    def ready(self):
        from tutor.questions import placements

        placements.register()
