"""What the tutor offers lti's deep linking (registered in TutorConfig.ready, see lti.placements): the course's
chat, and each released question set, which can be placed as graded (a gradebook column for its scores)."""

import logging

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from courses.access import tool_url
from lti.placements import Choice, Landing, LineItemSpec
from tutor.questions.models import Question, QuestionSet
from tutor.questions.practice import LINE_ITEM_TAG

log = logging.getLogger(__name__)

CHAT, QUESTION_SET = "tutor", "question_set"
SET_PREFIX = "set:"


class Chat:
    """The course tutor's chat; its page is where every other launch lands too."""

    title = gettext_lazy("Course tutor (chat)")
    description = gettext_lazy("Students ask questions about the course texts and get answers with sources.")

    def choices(self, course_id):
        """The chat can always be placed."""
        return [self._choice()]

    def chosen(self, course_id, key, graded):
        """The chat's Choice for its key."""
        return self._choice() if key == CHAT else None

    def _choice(self):
        return Choice(CHAT, str(self.title), str(self.description), {"placement": CHAT})

    def land(self, membership, custom):
        """The chat page, for a launch of the placed chat or of a link without a placement."""
        if custom.get("placement", CHAT) != CHAT:
            return None
        return Landing(tool_url("tutor:home", membership.course_id))


class QuestionSets:
    """The course's released question sets, to practise; placed as graded they report each attempt's score."""

    @staticmethod
    def _choice(question_set):
        approved = question_set.questions.approved()
        count, scored = approved.count(), approved.exclude(kind=Question.OPEN).count()
        text = _("Practice questions (%(count)d)") % {"count": count}
        if question_set.section_id:
            text += " · " + _("beside the section “%(section)s”") % {"section": question_set.section.path}
        return Choice(f"{SET_PREFIX}{question_set.pk}", question_set.title, text,
                      {"placement": QUESTION_SET, "question_set": str(question_set.pk)},
                      LineItemSpec(question_set.title, scored, question_set.resource_id, LINE_ITEM_TAG))

    def choices(self, course_id):
        """One Choice per released set of the course."""
        if course_id is None:
            return []
        return [self._choice(s) for s in QuestionSet.objects.filter(course_id=course_id).released()
                .select_related("section").order_by("section__document_id", "section__order", "created_at")]

    def hint(self, course_id):
        """A note that sets could be placed here, while the course has no released set."""
        if QuestionSet.objects.filter(course_id=course_id).released().exists():
            return ""
        return _("Released question sets of this course can be placed here too; there are none yet.")

    def chosen(self, course_id, key, graded):
        """The Choice of a released set of this course (marked graded when the lecturer asked for it)."""
        if not key.startswith(SET_PREFIX) or not key[len(SET_PREFIX):].isdigit():
            return None
        found = QuestionSet.objects.filter(course_id=course_id).released().filter(pk=int(key[len(SET_PREFIX):])).first()
        if found is None:
            return None
        if graded:
            QuestionSet.objects.filter(pk=found.pk).update(graded=True)
        return self._choice(found)

    def land(self, membership, custom):
        """A placed set's page (practice; the review page for a teacher while it is not released)."""
        if custom.get("placement") != QUESTION_SET or not str(custom.get("question_set", "")).isdigit():
            return None
        found = QuestionSet.objects.filter(pk=int(custom["question_set"]), course=membership.course_id).first()
        if found is None or not (found.is_released or membership.is_teaching):
            log.warning("tutor: placed question set %r is not a released set of course %s", custom.get("question_set"),
                        membership.course_id)
            return Landing(None, found.resource_id if found else None)
        name = "tutor:practice-set" if found.is_released else "tutor:question-set"
        return Landing(tool_url(name, membership.course_id, found.pk), found.resource_id)


def register():
    """Offer the chat (the default landing) and the question sets to lti's deep linking."""
    from lti import placements

    placements.register(Chat(), default=True)
    placements.register(QuestionSets())
