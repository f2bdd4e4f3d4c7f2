"""URLs of the lti app."""

app_name = "lti"
urlpatterns = []
