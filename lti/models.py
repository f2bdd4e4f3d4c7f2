"""Models of the lti app: platforms, deployments, the tool's keys, context and user mappings, AGS line items,
used nonces, one-time registration links."""

import hashlib
import secrets

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Registration(models.Model):
    """One LTI 1.3 platform registration (issuer + client_id) with the platform's endpoints."""

    PENDING, ACTIVE, DISABLED = "pending", "active", "disabled"
    STATUSES = [(PENDING, _("Pending")), (ACTIVE, _("Active")), (DISABLED, _("Disabled"))]

    name = models.CharField(_("name"), max_length=200, blank=True)
    issuer = models.CharField(_("issuer"), max_length=500)
    client_id = models.CharField(_("client ID"), max_length=255)
    auth_login_url = models.URLField(_("authentication request URL"), max_length=500)
    auth_token_url = models.URLField(_("access token URL"), max_length=500, blank=True)
    key_set_url = models.URLField(_("platform JWKS URL"), max_length=500)
    auth_audience = models.CharField(_("token audience"), max_length=500, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=STATUSES, default=ACTIVE)
    test_platform = models.BooleanField(default=False, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("platform registration")
        verbose_name_plural = _("platform registrations")
        constraints = [models.UniqueConstraint(fields=["issuer", "client_id"], name="one_registration_per_client")]

    def __str__(self):
        return self.name or f"{self.issuer} ({self.client_id})"

    @property
    def is_active(self):
        """Whether launches from this registration are accepted."""
        return self.status == self.ACTIVE


class Deployment(models.Model):
    """A deployment_id of a registration (Moodle: one per tool type)."""

    registration = models.ForeignKey(Registration, on_delete=models.CASCADE, related_name="deployments")
    deployment_id = models.CharField(_("deployment ID"), max_length=255)

    class Meta:
        verbose_name = _("deployment")
        verbose_name_plural = _("deployments")
        constraints = [models.UniqueConstraint(fields=["registration", "deployment_id"], name="one_deployment_id")]

    def __str__(self):
        return f"{self.deployment_id} @ {self.registration}"


class ToolKeyQuerySet(models.QuerySet):
    """Tool keys read as sentences: ToolKey.objects.published()."""

    def published(self):
        """Keys whose public half is in the JWKS: the active one and retired ones inside the grace period."""
        grace = timezone.now() - timezone.timedelta(seconds=settings.LTI_KEY_GRACE_SECONDS)
        return self.filter(models.Q(active=True) | models.Q(retired_at__gte=grace)).order_by("-created_at")


class ToolKey(models.Model):
    """An RSA key pair of the tool; the active one signs, retired ones stay published for a grace period."""

    kid = models.CharField(max_length=64, unique=True)
    private_pem = models.TextField()
    public_pem = models.TextField()
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    objects = ToolKeyQuerySet.as_manager()

    class Meta:
        verbose_name = _("tool key")
        verbose_name_plural = _("tool keys")
        constraints = [models.UniqueConstraint(fields=["active"], condition=models.Q(active=True),
                                               name="one_active_tool_key")]

    def __str__(self):
        return f"{self.kid} ({'active' if self.active else 'retired'})"


class LtiContextQuerySet(models.QuerySet):
    """LTI contexts read as sentences: LtiContext.objects.for_launch(registration, deployment, id, new_course)."""

    def for_launch(self, registration, deployment, context_id, new_course):
        """The context's mapping, made with its course (new_course() returns it) on the first launch.

        Idempotent under races: two first launches into a new course at the same moment both find no mapping;
        the second insert waits for the first transaction and fails on the unique constraint, its savepoint takes
        back the course it made, and it reads the winner's mapping instead of answering with an error."""
        lookup = {"registration": registration, "deployment": deployment, "context_id": context_id}
        found = self.filter(**lookup).select_related("course").first()
        if found is not None:
            return found
        try:
            with transaction.atomic():
                return self.create(**lookup, course=new_course())
        except IntegrityError:
            return self.select_related("course").get(**lookup)


class LtiContext(models.Model):
    """Maps an LTI context (registration, deployment, context_id) to one Course."""

    registration = models.ForeignKey(Registration, on_delete=models.CASCADE, related_name="contexts")
    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="contexts")
    context_id = models.CharField(max_length=255)
    course = models.ForeignKey("courses.Course", on_delete=models.CASCADE, related_name="lti_contexts")
    title = models.CharField(max_length=255, blank=True)
    memberships_url = models.URLField(max_length=500, blank=True)
    lineitems_url = models.URLField(max_length=500, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = LtiContextQuerySet.as_manager()

    class Meta:
        verbose_name = _("LTI context")
        verbose_name_plural = _("LTI contexts")
        constraints = [models.UniqueConstraint(fields=["registration", "deployment", "context_id"],
                                               name="one_course_per_context")]

    def __str__(self):
        return f"{self.context_id} -> {self.course}"


class LtiLineItemQuerySet(models.QuerySet):
    """Line items read as sentences: LtiLineItem.objects.record(context, resource_id, url)."""

    def record(self, context, resource_id, url):
        """Keep the line item URL a launch named for the tool's resource in this context (once; kept up to date)."""
        item, _created = self.update_or_create(context=context, resource_id=resource_id[:255],
                                               defaults={"url": url[:500]})
        return item


class LtiLineItem(models.Model):
    """An AGS line item (gradebook column) of a context, for one of the tool's resources (its resourceId).

    Recorded from a launch of a placed link that names its line item, or when the tool found or created the
    line item itself; grade reports post scores to its URL.
    """

    context = models.ForeignKey(LtiContext, on_delete=models.CASCADE, related_name="line_items")
    resource_id = models.CharField(max_length=255)
    url = models.URLField(max_length=500)
    updated_at = models.DateTimeField(auto_now=True)

    objects = LtiLineItemQuerySet.as_manager()

    class Meta:
        verbose_name = _("LTI line item")
        verbose_name_plural = _("LTI line items")
        constraints = [models.UniqueConstraint(fields=["context", "resource_id"], name="one_line_item_per_resource")]

    def __str__(self):
        return f"{self.resource_id} -> {self.url}"


def pseudonym(issuer, sub):
    """The Django username of a platform user: a hash of issuer and sub, nothing personal."""
    return "lti-" + hashlib.sha256(f"{issuer}\x00{sub}".encode()).hexdigest()[:24]


class LtiUser(models.Model):
    """Maps a platform user (registration + sub) to a pseudonymous Django user.

    One person of a platform (issuer + sub) is one Django user; each registration of that platform (the
    tool registered again, a second tool type) gets its own link to that same user.
    """

    registration = models.ForeignKey(Registration, on_delete=models.CASCADE, related_name="users")
    sub = models.CharField(max_length=255)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="lti_links")
    name = models.CharField(max_length=255, blank=True, help_text=_("only if the platform shares it"))

    class Meta:
        verbose_name = _("LTI user")
        verbose_name_plural = _("LTI users")
        constraints = [models.UniqueConstraint(fields=["registration", "sub"], name="one_user_per_sub"),
                       models.UniqueConstraint(fields=["registration", "user"], name="one_link_per_registration")]

    def __str__(self):
        return self.user.username


class UsedNonce(models.Model):
    """A launch nonce already accepted: a second launch with it is a replay."""

    registration = models.ForeignKey(Registration, on_delete=models.CASCADE)
    nonce = models.CharField(max_length=255)
    used_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["registration", "nonce"], name="nonce_single_use")]

    def __str__(self):
        return self.nonce


class TestPlatformKey(models.Model):
    """The built-in test platform's own signing key (only used when settings.LTI_TEST_PLATFORM)."""

    kid = models.CharField(max_length=64, unique=True)
    private_pem = models.TextField()
    public_pem = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.kid


def _secret_hash(secret):
    return hashlib.sha256(secret.encode()).hexdigest()


class RegistrationLinkQuerySet(models.QuerySet):
    """Registration links read as sentences: RegistrationLink.objects.usable()."""

    def usable(self):
        """Links not used yet and not expired."""
        return self.filter(used_at__isnull=True, expires_at__gt=timezone.now())

    def for_secret(self, secret):
        """The link whose secret this is (only its hash is stored), or an empty queryset."""
        return self.filter(secret_hash=_secret_hash(secret or ""))


class RegistrationLink(models.Model):
    """A one-time, expiring link an admin creates and pastes into the LMS to start dynamic registration.

    Only the hash of its secret is stored. Without a usable link /lti/register/ contacts nobody.
    """

    secret_hash = models.CharField(max_length=64, unique=True, editable=False)
    allowed_host = models.CharField(
        _("platform host"), max_length=255, blank=True,
        help_text=_("Only this platform host may use the link (e.g. moodle.example.edu); it may be on an "
                    "internal address, and its registration starts active. Empty: any public host, pending."))
    note = models.CharField(_("note for admins"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created on"), auto_now_add=True)
    expires_at = models.DateTimeField(_("valid until"))
    used_at = models.DateTimeField(_("used on"), null=True, blank=True)
    registration = models.ForeignKey(Registration, on_delete=models.SET_NULL, null=True, blank=True,
                                     related_name="registration_links", verbose_name=_("registered platform"))

    objects = RegistrationLinkQuerySet.as_manager()

    class Meta:
        verbose_name = _("registration link")
        verbose_name_plural = _("registration links")

    def __str__(self):
        return f"{self.allowed_host or '*'} until {self.expires_at:%Y-%m-%d %H:%M}"

    def new_secret(self):
        """Give the link a new random secret and return it; only its hash is kept (the secret is shown once)."""
        secret = secrets.token_urlsafe(32)
        self.secret_hash = _secret_hash(secret)
        return secret

    @property
    def status(self):
        """'used', 'expired' or 'usable'."""
        if self.used_at:
            return "used"
        return "expired" if self.expires_at <= timezone.now() else "usable"
