"""URLs of the lti app (the built-in test platform only when settings.LTI_TEST_PLATFORM)."""

from django.conf import settings
from django.urls import include, path

from lti import registration_views, views

app_name = "lti"
urlpatterns = [
    path("login", views.oidc_login, name="login"),
    path("login/blocked", views.login_blocked, name="login-blocked"),
    path("launch", views.launch, name="launch"),
    path("jwks", views.jwks, name="jwks"),
    path("deep-link", views.deep_link, name="deep-link"),
    path("register/", registration_views.register, name="register"),
    path("register/<str:secret>/", registration_views.register, name="register-link"),
]
if settings.LTI_TEST_PLATFORM:
    from lti import test_platform

    urlpatterns.append(path("test-platform/", include(test_platform.urlpatterns)))
