"""URLs of the tutor app."""

app_name = "tutor"
urlpatterns = []
