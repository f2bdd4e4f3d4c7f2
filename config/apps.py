from django.apps import AppConfig


class ConfigConfig(AppConfig):
    """The project package as an app: it owns the health checks' heartbeat table."""

    name = "config"
    verbose_name = "Project"

    def ready(self):
        """Register the project's system checks (config.checks)."""
        from config import checks  # noqa: F401
