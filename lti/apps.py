from django.apps import AppConfig
from django.conf import settings


class LtiConfig(AppConfig):
    """The LTI app; it registers with the project (config/) what only it knows: who may frame the tool, and its part
    of a person's data and of the retention run."""

    name = "lti"

    def ready(self):
        """Fill the project's registries (config.framing, config.privacy); wire the test platform's keys."""
        from config.framing import register_frame_ancestors
        from lti import privacy
        from lti.framing import cached_platform_origins, platform_origins

        register_frame_ancestors(platform_origins, cached_platform_origins)
        privacy.register()
        if settings.LTI_TEST_PLATFORM:  # the built-in test platform signs in this process: no HTTP for its keys
            from lti.demo import local_key_set
            from lti.tool import add_local_key_set

            add_local_key_set(local_key_set)
