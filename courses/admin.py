"""Django admin of the courses app: API tokens (an admin's token for every course or one; the secret is shown once), and
the sign-in sessions of people, which the admin can revoke."""

from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from courses.models import ApiToken, PersonSession
from courses.sessions import revoke_sessions


class ApiTokenForm(forms.ModelForm):
    """A new admin's token: its name, the course it is limited to (empty: every course), scope and lifetime."""

    days = forms.IntegerField(label=_("valid for (days)"), min_value=1, max_value=3650, initial=90)

    class Meta:
        model = ApiToken
        fields = ["name", "course", "scope"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """API tokens of lecturers and admins: when they were last used, revocation; a new one acts as the admin."""

    form = ApiTokenForm
    list_display = ["__str__", "course", "user", "scope", "created_at", "expires_at", "last_used_at", "revoked_at"]
    list_filter = ["scope"]
    actions = ["revoke"]

    def get_fields(self, request, obj=None):
        """Adding: name, course, scope, days; an existing token: what it is and when it was used."""
        if obj is None:
            return ["name", "course", "scope", "days"]
        return ["name", "course", "user", "scope", "hint", "created_at", "expires_at", "last_used_at", "revoked_at"]

    def get_readonly_fields(self, request, obj=None):
        """Only the name of an existing token can change."""
        return [] if obj is None else ["course", "user", "scope", "hint", "created_at", "expires_at", "last_used_at",
                                       "revoked_at"]

    def save_model(self, request, obj, form, change):
        """A new token gets its secret here, shown once in a message; it acts as the admin who made it."""
        if change:
            return super().save_model(request, obj, form, change)
        _token, secret = ApiToken.issue(request.user, name=form.cleaned_data["name"], scope=form.cleaned_data["scope"],
                                        days=form.cleaned_data["days"], course=form.cleaned_data["course"], token=obj)
        messages.success(request, format_html("{} <code id=\"api-token\">{}</code>",
                                              _("API token (shown only now; copy it):"), secret))
        return None

    @admin.action(description=_("Revoke the selected tokens"))
    def revoke(self, request, queryset):
        """Stop the selected tokens from working, at once."""
        for token in queryset.filter(revoked_at__isnull=True):
            token.revoke()


@admin.register(PersonSession)
class PersonSessionAdmin(admin.ModelAdmin):
    """Sign-in sessions after LTI launches: whose, since and until when; revoke one person's sessions everywhere."""

    list_display = ["user", "created_at", "expire_date"]
    search_fields = ["user__username", "user__lti_links__sub"]
    fields = ["user", "created_at", "expire_date"]
    readonly_fields = fields
    actions = ["revoke_people"]

    def has_add_permission(self, request):
        return False

    @admin.action(description=_("Revoke every session of these people"))
    def revoke_people(self, request, queryset):
        """End all sessions of the people of the chosen sessions (every browser); they must launch again."""
        users = {s.user for s in queryset.select_related("user") if s.user is not None}
        count = sum(revoke_sessions(user) for user in users)
        queryset.filter(user__isnull=True).delete()
        self.message_user(request, _("%(count)d session(s) of %(people)d person(s) revoked.") % {
            "count": count, "people": len(users)}, messages.SUCCESS)
