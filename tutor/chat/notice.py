"""The AI-use notice: before a student's first question, what the tutor is, that its answers can be wrong, what is
stored, for how long and who sees it, with a link to the processing record; accepted once per person.

The text is the institution's (AI_NOTICE_FILE, plain text, paragraphs separated by blank lines), else the
tool's own in the page's language. A changed text has a new version and is asked for again.
"""

import hashlib
from pathlib import Path

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from tutor.models import AiNoticeAcceptance


def notice_paragraphs(retention_days):
    """The notice as a list of paragraphs: the institution's text, or the built-in one."""
    if settings.AI_NOTICE_FILE:
        text = Path(settings.AI_NOTICE_FILE).read_text(encoding="utf-8")
        return [part.strip() for part in text.split("\n\n") if part.strip()]
    return [
        _("This tutor is a computer program (a language model run by your institution), not a person. It answers "
          "from the texts of this course and shows the passages it used."),
        _("Its answers can be wrong or incomplete. Check them against the cited passages and your course "
          "material; it does not replace your teachers."),
        _("Your questions and the tutor's answers are stored for %(days)s days, then deleted. Your teachers see "
          "only summaries (how many questions, frequent words when enough students asked), never your questions "
          "with your name. Nothing leaves your institution's servers.") % {"days": retention_days},
    ]


def version(paragraphs):
    """A short fingerprint of the notice's text: an acceptance counts only for the text accepted."""
    return hashlib.sha256("\n\n".join(paragraphs).encode()).hexdigest()[:16]


def required(membership):
    """Whether this member must accept the notice before asking (students; not teachers) (AI_NOTICE_REQUIRED)."""
    return settings.AI_NOTICE_REQUIRED and not membership.is_teaching


def has_accepted(user, paragraphs):
    """Whether the person accepted this text of the notice."""
    return AiNoticeAcceptance.objects.filter(user=user, version=version(paragraphs)).exists()


def pending(membership, retention_days):
    """The notice's paragraphs when this member still has to accept them, else None."""
    if not required(membership):
        return None
    paragraphs = notice_paragraphs(retention_days)
    return None if has_accepted(membership.user, paragraphs) else paragraphs


def accept(user, paragraphs):
    """Record that the person accepted this text now (one row per person, the latest text)."""
    AiNoticeAcceptance.objects.update_or_create(user=user, defaults={"version": version(paragraphs),
                                                                     "accepted_at": timezone.now()})


def processing_record_url():
    """Where the processing record is: PROCESSING_RECORD_URL, else the copy this tool serves."""
    from django.urls import reverse

    return settings.PROCESSING_RECORD_URL or reverse("processing-record")
