"""Forms of the courses app: a lecturer's new API token."""

from django import forms
from django.utils.translation import gettext_lazy as _

from courses.models import ApiToken


class ApiTokenForm(forms.Form):
    """A new API token of the course: what it is for, whether it may also change things, how long it lives."""

    name = forms.CharField(label=_("Name"), max_length=100,
                           help_text=_("What it is for, e.g. “portal chatbot” or “upload script”."))
    scope = forms.ChoiceField(label=_("May"), choices=ApiToken.SCOPES, initial=ApiToken.READ)
    days = forms.TypedChoiceField(label=_("Valid for"), coerce=int, initial=90, choices=[
        (7, _("7 days")), (30, _("30 days")), (90, _("90 days")), (365, _("one year"))])
