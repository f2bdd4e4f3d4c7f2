from django.apps import AppConfig
from django.conf import settings


class LtiConfig(AppConfig):
    name = "lti"

    def ready(self):
        if settings.LTI_TEST_PLATFORM:  # the built-in test platform signs in this process: no HTTP for its keys
            from lti.demo import local_key_set
            from lti.tool import add_local_key_set

            add_local_key_set(local_key_set)
