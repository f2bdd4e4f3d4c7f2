"""Courses and who belongs to them. Documents, sections and chunks of the course texts live here too."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Course(models.Model):
    """One course of the LMS (one LTI context); every text, chat and question belongs to exactly one."""

    title = models.CharField(_("title"), max_length=255)
    language = models.CharField(_("language of the course texts"), max_length=8, default="de")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("course")
        verbose_name_plural = _("courses")

    def __str__(self):
        return self.title


class MembershipQuerySet(models.QuerySet):
    """Memberships read as sentences: Membership.objects.teaching()."""

    def teaching(self):
        """Those who may set up the course tutor: instructors, teaching assistants, administrators."""
        return self.filter(role__in=Membership.TEACHING_ROLES)


class Membership(models.Model):
    """A person's role in a course, refreshed at every LTI launch."""

    INSTRUCTOR, TEACHING_ASSISTANT, ADMINISTRATOR, LEARNER = "instructor", "ta", "admin", "learner"
    ROLES = [
        (INSTRUCTOR, _("Instructor")),
        (TEACHING_ASSISTANT, _("Teaching assistant")),
        (ADMINISTRATOR, _("Administrator")),
        (LEARNER, _("Learner")),
    ]
    TEACHING_ROLES = (INSTRUCTOR, TEACHING_ASSISTANT, ADMINISTRATOR)

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=ROLES, default=LEARNER)
    updated_at = models.DateTimeField(auto_now=True)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["course", "user"], name="one_membership_per_course")]

    def __str__(self):
        return f"{self.user} in {self.course} as {self.role}"

    @property
    def is_teaching(self):
        """Whether this member may manage the course's texts and tutor."""
        return self.role in self.TEACHING_ROLES
