"""Deep linking: what a lecturer can place in the course, the signed LtiDeepLinkingResponse, and the landing page
of a launch from a placed item.

Placeable: the course tutor chat, and each released question set of the course. A set placed as graded
carries a lineItem (scoreMaximum = its number of questions, label, resourceId, tag), so the platform creates
a gradebook column; its custom parameters (placement=question_set, question_set=<id>) make a launch from
that link open the set directly, and the launch's AGS claim names the line item that scores go to.
"""

import logging

from django.core import signing
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from pylti1p3.deep_link import DeepLink
from pylti1p3.deep_link_resource import DeepLinkResource
from pylti1p3.lineitem import LineItem

from courses.access import tool_url
from lti.models import LtiContext, Registration
from lti.tool import to_pylti

log = logging.getLogger(__name__)

SALT = "lti.deep-link"
MAX_AGE = 3600
DL_SETTINGS = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"
CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
AGS_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
TUTOR, QUESTION_SET = "tutor", "question_set"
SET_PREFIX = "set:"
LINE_ITEM_TAG = "tutor-practice"
CHOICES = {TUTOR: (gettext_lazy("Course tutor (chat)"),
                   gettext_lazy("Students ask questions about the course texts and get answers with sources."))}


def _released_sets(course_id):
    from tutor.models import QuestionSet

    return QuestionSet.objects.filter(course_id=course_id, status=QuestionSet.RELEASED)


def choices(course=None):
    """[(key, title, description)] of what can be placed: the tutor, then the course's released question sets."""
    found = [(key, title, text) for key, (title, text) in CHOICES.items()]
    if course is not None:
        for question_set in _released_sets(getattr(course, "pk", course)):
            count = question_set.questions.filter(review="approved").count()
            found.append((f"{SET_PREFIX}{question_set.pk}", question_set.title,
                          _("Practice questions (%(count)d multiple choice)") % {"count": count}))
    return found


def make_token(launch, membership):
    """A signed token carrying the deep-linking request (return URL, data, deployment) to the choice form."""
    body = launch.get_launch_data()
    dl = body.get(DL_SETTINGS) or {}
    return signing.dumps({
        "r": launch._registration.model.pk, "d": body["https://purl.imsglobal.org/spec/lti/claim/deployment_id"],
        "url": dl.get("deep_link_return_url", ""), "data": dl.get("data"), "c": membership.course_id,
        "li": dl.get("accept_lineitem"),
    }, salt=SALT, compress=True)


def _resource(request_data, choice, launch_url, graded):
    """The content item for a choice; LaunchRejected for anything not placeable in the token's course."""
    from lti.launch import LaunchRejected

    if choice in CHOICES:
        title, _text = CHOICES[choice]
        return (DeepLinkResource().set_url(launch_url).set_title(str(title))
                .set_custom_params({"placement": choice}))
    question_set = None
    if choice.startswith(SET_PREFIX) and choice[len(SET_PREFIX):].isdigit():
        question_set = _released_sets(request_data.get("c")).filter(pk=int(choice[len(SET_PREFIX):])).first()
    if question_set is None:
        raise LaunchRejected(_("Please choose what to place."), f"unknown deep linking choice {choice!r}")
    resource = (DeepLinkResource().set_url(launch_url).set_title(question_set.title)
                .set_custom_params({"placement": QUESTION_SET, "question_set": str(question_set.pk)}))
    if graded and request_data.get("li") is not False:  # a platform that takes no lineItem: found by resourceId
        maximum = question_set.questions.filter(review="approved").count()
        resource.set_lineitem(LineItem().set_score_maximum(maximum).set_label(question_set.title)
                              .set_resource_id(question_set.resource_id).set_tag(LINE_ITEM_TAG))
    if graded:
        type(question_set).objects.filter(pk=question_set.pk).update(graded=True)
    return resource


def response_for(request_data, choice, launch_url, graded=False):
    """(signed response JWT, return URL) placing `choice` (graded: with a line item); LaunchRejected on a bad one."""
    from lti.launch import LaunchRejected

    registration = Registration.objects.filter(pk=request_data["r"], status=Registration.ACTIVE).first()
    if registration is None or not request_data["url"]:
        raise LaunchRejected(_("The learning platform is no longer registered."), "deep linking registration gone")
    resource = _resource(request_data, choice, launch_url, graded)
    link = DeepLink(to_pylti(registration), request_data["d"],
                    {"deep_link_return_url": request_data["url"], "data": request_data["data"]})
    message = link.get_message_jwt([resource])
    if request_data["data"] is None:
        message.pop("https://purl.imsglobal.org/spec/lti-dl/claim/data")
    return link.encode_jwt(message), request_data["url"]


def landing_url(launch, membership, token):
    """Where a resource-link launch lands: a placed question set (its line item recorded), else the tutor chat."""
    body = launch.get_launch_data()
    custom = body.get(CLAIM + "custom") or {}
    if custom.get("placement") == QUESTION_SET and str(custom.get("question_set", "")).isdigit():
        from tutor.models import QuestionSet
        from tutor.practice import record_placement

        question_set = QuestionSet.objects.filter(pk=int(custom["question_set"]), course=membership.course_id).first()
        if question_set is not None:
            context = LtiContext.objects.filter(
                registration=launch._registration.model, course_id=membership.course_id,
                context_id=(body.get(CLAIM + "context") or {}).get("id")).first()
            if context is not None:
                record_placement(question_set, context, body.get(AGS_CLAIM))
            if question_set.is_released or membership.is_teaching:
                name = "tutor:practice-set" if question_set.is_released else "tutor:question-set"
                return tool_url(name, membership.course_id, question_set.pk, token=token)
        log.warning("lti: placed question set %r is not a released set of course %s", custom.get("question_set"),
                    membership.course_id)
    return tool_url("tutor:home", membership.course_id, token=token)
