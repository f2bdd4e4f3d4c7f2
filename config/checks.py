"""Django's deployment checks for the middleware it finds by name, run by class instead; and that the middleware an
API request with a token skips (settings.API_TOKEN_SKIPS_MIDDLEWARE, config.asgi) is neither the security headers' nor
the Content-Security-Policy's.

Django's ``check --deploy`` looks for ``django.middleware.security.SecurityMiddleware`` and
``django.middleware.csrf.CsrfViewMiddleware`` by their dotted names in MIDDLEWARE; config.middleware lists
subclasses of them (their hooks run on the event loop), which the name test does not see (security.W001, W003),
and with W001 Django skips its checks of HSTS, nosniff, the referrer and opener policies and the https redirect.
This check runs Django's own checks as if Django's names were listed wherever a subclass is, so every one of them
still applies; settings.SILENCED_SYSTEM_CHECKS silences only the name tests.
"""

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.utils.module_loading import import_string

DJANGO_MIDDLEWARE = ("django.middleware.security.SecurityMiddleware", "django.middleware.csrf.CsrfViewMiddleware")


def middleware_by_class(middleware):
    """MIDDLEWARE with each subclass of Django's security or CSRF middleware replaced by Django's own name."""
    listed = []
    for path in middleware:
        found = import_string(path)
        for django_path in DJANGO_MIDDLEWARE:
            if isinstance(found, type) and issubclass(found, import_string(django_path)):
                path = django_path
        listed.append(path)
    return listed


@register(Tags.security, deploy=True)
def security_checks_by_class(app_configs, **kwargs):
    """Django's deploy checks of the security and CSRF middleware and the settings they govern, by class."""
    from django.core.checks.security import base, csrf
    from django.test.utils import override_settings  # only while the checks run (manage.py check)

    checks = [base.check_security_middleware, base.check_sts, base.check_sts_include_subdomains,
              base.check_sts_preload, base.check_content_type_nosniff, base.check_ssl_redirect,
              base.check_referrer_policy, base.check_cross_origin_opener_policy, csrf.check_csrf_middleware]
    with override_settings(MIDDLEWARE=middleware_by_class(settings.MIDDLEWARE)):
        found = [message for check in checks for message in check(app_configs)]
    # the name tests are silenced in settings; missing middleware found by class is reported under our own id
    return [Warning(m.msg, hint=m.hint, id=f"config.{m.id.split('.')[1]}") if m.id in NAME_TESTS else m
            for m in found]


NAME_TESTS = ("security.W001", "security.W003")


KEPT_FOR_TOKENS = ("django.middleware.security.SecurityMiddleware", "config.csp.ContentSecurityPolicyMiddleware")


@register(Tags.security)
def token_chain_keeps_the_headers(app_configs, **kwargs):
    """config.asgi's chain for API requests with a token (MIDDLEWARE less API_TOKEN_SKIPS_MIDDLEWARE) keeps the
    security headers and the CSP: every response carries them."""
    skipped = [import_string(path) for path in getattr(settings, "API_TOKEN_SKIPS_MIDDLEWARE", [])]
    return [Error(f"API_TOKEN_SKIPS_MIDDLEWARE skips {kept}: every response, an API token's too, must carry its headers",
                  id="config.E001")
            for kept in KEPT_FOR_TOKENS
            if any(isinstance(found, type) and issubclass(found, import_string(kept)) for found in skipped)]
