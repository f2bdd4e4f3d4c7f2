"""Forms of the tutor: the lecturer's tutor settings and an answer's feedback."""

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from tutor.models import TutorConfig
from tutor.prompts import DEFAULT_SYSTEM_PROMPT


class TutorConfigForm(forms.ModelForm):
    """The course tutor's settings; an endpoint override must be an http(s) URL on an allowed inference host."""

    class Meta:
        model = TutorConfig
        fields = ["answer_language", "strictness", "sources", "temperature", "welcome_message", "system_prompt",
                  "retention_days", "model", "endpoint", "timeout_seconds"]
        widgets = {"welcome_message": forms.Textarea(attrs={"rows": 3}),
                   "system_prompt": forms.Textarea(attrs={"rows": 6})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["system_prompt"].widget.attrs["placeholder"] = DEFAULT_SYSTEM_PROMPT["de"]

    def clean_endpoint(self):
        """Each comma-separated URL must be http(s) with a host."""
        from urllib.parse import urlparse

        value = self.cleaned_data["endpoint"].strip()
        for url in filter(None, (u.strip() for u in value.split(","))):
            parsed = urlparse(url)
            if parsed.scheme not in {"http", "https"} or not parsed.hostname:
                raise forms.ValidationError(_("“%(url)s” is not an http(s) address.") % {"url": url})
            if parsed.hostname not in settings.INFERENCE_ALLOWED_HOSTS:
                raise forms.ValidationError(
                    _("“%(host)s” is not one of the institution's inference servers (allowed: %(allowed)s).")
                    % {"host": parsed.hostname, "allowed": ", ".join(settings.INFERENCE_ALLOWED_HOSTS)})
        return value


class FeedbackForm(forms.Form):
    """Thumbs up or down with an optional comment."""

    rating = forms.ChoiceField(choices=[("up", _("Helpful")), ("down", _("Not helpful"))])
    comment = forms.CharField(required=False, max_length=2000)
