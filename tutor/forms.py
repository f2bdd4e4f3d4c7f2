"""Forms of the tutor: the lecturer's tutor settings, the admin's server settings of a course, test questions and
an answer's feedback."""

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from tutor.chat.models import TestQuestion
from tutor.inference.prompts import DEFAULT_SYSTEM_PROMPT
from tutor.models import TutorConfig


class TutorConfigForm(forms.ModelForm):
    """The lecturer's teaching settings of the course tutor; the model only among those the admin allows
    (settings.INFERENCE_MODEL_CHOICES). Server address and time limit are the admin's (TutorServerForm)."""

    model = forms.ChoiceField(label=_("model"), required=False)

    class Meta:
        model = TutorConfig
        fields = ["answer_language", "strictness", "sources", "temperature", "welcome_message", "system_prompt",
                  "retention_days", "answer_mode", "quote_check", "query_rewrite", "model"]
        widgets = {"welcome_message": forms.Textarea(attrs={"rows": 3}),
                   "system_prompt": forms.Textarea(attrs={"rows": 6})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["system_prompt"].widget.attrs["placeholder"] = DEFAULT_SYSTEM_PROMPT["de"]
        allowed = [m for m in settings.INFERENCE_MODEL_CHOICES if m != settings.INFERENCE_MODEL]
        current = self.instance.model if self.instance else ""
        if not allowed and not current:
            del self.fields["model"]  # nothing to choose: the installation's model
            return
        choices = [("", _("%(model)s (the installation's default)") % {"model": settings.INFERENCE_MODEL})]
        choices += [(m, m) for m in allowed]
        if current and current not in allowed:  # set by an admin: kept, but not offered to others
            choices.append((current, current))
        self.fields["model"].choices = choices
        self.fields["model"].help_text = _("The models the institution offers for its tutors.")


class TutorServerForm(forms.ModelForm):
    """The admin's settings of a course tutor's inference server: endpoint (on an allowed host), model, time limit."""

    class Meta:
        model = TutorConfig
        fields = ["course", "model", "endpoint", "timeout_seconds", "answer_language", "strictness", "sources",
                  "temperature", "welcome_message", "system_prompt", "retention_days", "quote_check", "query_rewrite",
                  "quota_day", "quota_week", "generation_quota_day", "generation_quota_week"]

    def clean_endpoint(self):
        """Each comma-separated URL must be http(s) with a host on INFERENCE_ALLOWED_HOSTS."""
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


class TestQuestionForm(forms.ModelForm):
    """A lecturer's test question for the tutor and what a good answer contains."""

    class Meta:
        model = TestQuestion
        fields = ["question", "expected"]
        widgets = {"question": forms.TextInput(attrs={"size": 60}), "expected": forms.TextInput(attrs={"size": 40})}


class FeedbackForm(forms.Form):
    """Thumbs up or down with an optional comment."""

    rating = forms.ChoiceField(choices=[("up", _("Helpful")), ("down", _("Not helpful"))])
    comment = forms.CharField(required=False, max_length=2000)
