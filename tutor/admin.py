"""The Django admin of the tutor: the server settings of a course tutor (endpoint, model, time limit) are the
admin's, not the lecturer's (tutor.forms.TutorServerForm checks the endpoint's host)."""

from django.contrib import admin

from tutor.forms import TutorServerForm
from tutor.models import TutorConfig


@admin.register(TutorConfig)
class TutorConfigAdmin(admin.ModelAdmin):
    """Every setting of a course tutor, the inference server's included."""

    form = TutorServerForm
    list_display = ("course", "model", "endpoint", "timeout_seconds", "strictness", "updated_at")
    search_fields = ("course__title", "model", "endpoint")
    raw_id_fields = ("course",)
