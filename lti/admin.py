"""Django admin: manual platform registration, one-time registration links, deployments, keys and the mappings."""

from django import forms
from django.contrib import admin, messages
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext

from lti.dynamic_registration import MAX_LINK_HOURS, link_host, new_registration_link
from lti.models import (
    Deployment,
    LtiContext,
    LtiLineItem,
    LtiUser,
    Registration,
    RegistrationLink,
    ToolKey,
    local_time,
)


class DeploymentInline(admin.TabularInline):
    """Deployments are entered with their registration."""

    model = Deployment
    extra = 1


@admin.register(Registration)
class RegistrationAdmin(admin.ModelAdmin):
    """Manual registration: issuer, client_id, the platform's URLs and its deployment IDs."""

    list_display = ["__str__", "issuer", "client_id", "status", "created_at"]
    list_filter = ["status"]
    inlines = [DeploymentInline]
    actions = ["activate"]
    fields = ["name", "issuer", "client_id", "auth_login_url", "auth_token_url", "key_set_url", "auth_audience",
              "status"]

    @admin.action(description=_("Activate the selected platforms"))
    def activate(self, request, queryset):
        """Accept launches from pending registrations (e.g. after dynamic registration)."""
        queryset.update(status=Registration.ACTIVE)


@admin.register(ToolKey)
class ToolKeyAdmin(admin.ModelAdmin):
    """The tool's signing keys (rotate with `manage.py rotate_keys`); private keys are never shown."""

    list_display = ["kid", "active", "created_at", "retired_at"]
    fields = ["kid", "public_pem", "active", "created_at", "retired_at"]
    readonly_fields = fields

    def has_add_permission(self, request):
        """Keys are made by rotate_keys, not by hand."""
        return False


@admin.register(LtiContext)
class LtiContextAdmin(admin.ModelAdmin):
    """Which LMS course maps to which tutor course."""

    list_display = ["context_id", "title", "course", "registration", "deployment"]


@admin.register(LtiLineItem)
class LtiLineItemAdmin(admin.ModelAdmin):
    """Gradebook columns (AGS line items) of the tool's resources, per LMS course."""

    list_display = ["resource_id", "context", "url", "updated_at"]
    readonly_fields = ["context", "resource_id", "url", "updated_at"]


@admin.register(LtiUser)
class LtiUserAdmin(admin.ModelAdmin):
    """Pseudonymous users and the platform sub they stand for."""

    list_display = ["user", "registration", "sub"]
    readonly_fields = ["registration", "sub", "user", "name"]


class RegistrationLinkForm(forms.ModelForm):
    """A new registration link: the platform host it is for (optional), how long it stays valid, a note."""

    hours = forms.IntegerField(label=_("valid for (hours)"), min_value=1, max_value=MAX_LINK_HOURS, initial=24)

    class Meta:
        model = RegistrationLink
        fields = ["allowed_host", "note"]

    def clean_allowed_host(self):
        """A bare host name (moodle.example.edu), or empty for any public host."""
        try:
            return link_host(self.cleaned_data["allowed_host"])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None


@admin.register(RegistrationLink)
class RegistrationLinkAdmin(admin.ModelAdmin):
    """One-time links that start LTI Dynamic Registration; the link is shown once, right after it is made."""

    form = RegistrationLinkForm
    list_display = ["__str__", "allowed_host", "note", "created", "valid_until", "state", "registration"]
    actions = ["expire"]

    @admin.display(description=_("created on"), ordering="created_at")
    def created(self, obj):
        """When the link was made, in the one time zone of the admin pages, labelled."""
        return local_time(obj.created_at)

    @admin.display(description=_("valid until"), ordering="expires_at")
    def valid_until(self, obj):
        """When the link expires, in the one time zone of the admin pages, labelled."""
        return local_time(obj.expires_at)

    def get_fields(self, request, obj=None):
        """Adding: host, hours, note; an existing link: what happened to it."""
        if obj is None:
            return ["allowed_host", "hours", "note"]
        return ["allowed_host", "note", "created", "valid_until", "used", "registration"]

    def get_readonly_fields(self, request, obj=None):
        """Only the note of an existing link can change."""
        return [] if obj is None else ["allowed_host", "created", "valid_until", "used", "registration"]

    @admin.display(description=_("used on"))
    def used(self, obj):
        """When the LMS used the link, in the one time zone of the admin pages, labelled."""
        return local_time(obj.used_at)

    @admin.display(description=_("link state"))
    def state(self, obj):
        """Usable, used or expired."""
        return {"used": pgettext("registration link", "used"), "expired": pgettext("registration link", "expired"),
                "usable": pgettext("registration link", "usable")}[obj.status]

    def save_model(self, request, obj, form, change):
        """A new link gets its secret here; the URL to paste into the LMS is shown once, in a message."""
        if change:
            return super().save_model(request, obj, form, change)
        _link, url = new_registration_link(form.cleaned_data["allowed_host"], form.cleaned_data["hours"],
                                           form.cleaned_data["note"], link=obj)
        messages.success(request, format_html(
            "{} <code id=\"registration-link\">{}</code> {}",
            _("Registration link (shown only now; paste it into the LMS as the tool URL):"), url,
            _("It works once, until it expires.")))
        return None

    @admin.action(description=_("Expire the selected links now"))
    def expire(self, request, queryset):
        """Make unused links unusable (e.g. one pasted into the wrong place)."""
        queryset.filter(used_at__isnull=True).update(expires_at=timezone.now())
