"""The tutor app's configuration: one app (label "tutor") in three rooms, tutor.chat, tutor.questions and
tutor.inference."""

from django.apps import AppConfig


class TutorAppConfig(AppConfig):
    """The tutor app: its rooms (chat, questions, inference) share the app label "tutor"."""

    name = "tutor"

    def ready(self):
        """Fill the registries: what deep linking can place (lti.placements), the tutor's part of a person's data
        and of retention (config.privacy), the model servers' readiness check and gauges (config.health, metrics)."""
        from tutor.chat import retention
        from tutor.inference import health
        from tutor.questions import placements

        placements.register()
        retention.register()
        health.register()
