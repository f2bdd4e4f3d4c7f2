"""Django admin: manual platform registration, deployments, keys and the mappings."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from lti.models import Deployment, LtiContext, LtiLineItem, LtiUser, Registration, ToolKey


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
