"""Deep linking: the signed LtiDeepLinkingResponse placing what a lecturer chose, and the landing page of a launch
from a placed link.

What can be placed comes from the providers the tool's apps registered in lti.placements. A choice placed as
graded carries a lineItem (scoreMaximum, label, resourceId, tag), so the platform creates a gradebook column;
its custom parameters come back with every launch from that link, and the launch's AGS claim names the line
item that scores go to: it is kept as an LtiLineItem under the placed thing's resourceId.
"""

import logging

from django.core import signing
from django.utils.translation import gettext as _
from pylti1p3.deep_link import DeepLink
from pylti1p3.deep_link_resource import DeepLinkResource
from pylti1p3.lineitem import LineItem

from lti import placements, pylti1p3_adapter
from lti.models import LtiContext, LtiLineItem, Registration
from lti.tool import to_pylti

log = logging.getLogger(__name__)

SALT = "lti.deep-link"
MAX_AGE = 3600
DL_SETTINGS = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"
CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
AGS_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"


def choices(course=None):
    """[(key, title, description)] of what can be placed in the course."""
    course_id = getattr(course, "pk", course)
    return [(c.key, c.title, c.description) for c in placements.choices(course_id)]


def gradable(course=None):
    """Whether anything placeable in the course can get a gradebook column."""
    return any(c.line_item is not None for c in placements.choices(getattr(course, "pk", course)))


def make_token(launch, membership, new_window=False):
    """A signed token carrying the deep-linking request (return URL, data, deployment) to the choice form;
    new_window: the launch ran in a window opened from the LMS frame, which gets the answer back (hand_back.js)."""
    body = launch.get_launch_data()
    dl = body.get(DL_SETTINGS) or {}
    return signing.dumps({
        "r": pylti1p3_adapter.registration(launch).model.pk, "d": body["https://purl.imsglobal.org/spec/lti/claim/deployment_id"],
        "url": dl.get("deep_link_return_url", ""), "data": dl.get("data"), "c": membership.course_id,
        "li": dl.get("accept_lineitem"), "nw": bool(new_window),
    }, salt=SALT, compress=True)


def _resource(request_data, choice, launch_url, graded):
    """The content item for a choice; LaunchRejected for anything not placeable in the token's course."""
    from lti.launch import LaunchRejected

    found = placements.chosen(request_data.get("c"), choice, graded)
    if found is None:
        raise LaunchRejected(_("Please choose what to place."), f"unknown deep linking choice {choice!r}")
    resource = DeepLinkResource().set_url(launch_url).set_title(str(found.title)).set_custom_params(found.custom)
    spec = found.line_item
    if graded and spec and request_data.get("li") is not False:  # a platform that takes no lineItem: found by resourceId
        resource.set_lineitem(LineItem().set_score_maximum(spec.score_maximum).set_label(spec.label)
                              .set_resource_id(spec.resource_id).set_tag(spec.tag))
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


def landing_url(launch, membership):
    """Where a resource-link launch lands (see lti.placements); a line item named by the launch is recorded."""
    body = launch.get_launch_data()
    landing = placements.land(membership, body.get(CLAIM + "custom") or {})
    lineitem = (body.get(AGS_CLAIM) or {}).get("lineitem") or ""
    if landing.resource_id and lineitem:
        context = LtiContext.objects.filter(
            registration=pylti1p3_adapter.registration(launch).model, course_id=membership.course_id,
            context_id=(body.get(CLAIM + "context") or {}).get("id")).first()
        if context is not None:
            LtiLineItem.objects.record(context, landing.resource_id, lineitem)
    return landing.url
