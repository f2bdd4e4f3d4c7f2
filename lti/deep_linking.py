"""Deep linking: what a lecturer can place in the course, and the signed LtiDeepLinkingResponse.

Only the course tutor chat exists as a placeable item (there is no question-set feature yet).
"""

from django.core import signing
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from pylti1p3.deep_link import DeepLink
from pylti1p3.deep_link_resource import DeepLinkResource

from lti.models import Registration
from lti.tool import to_pylti

SALT = "lti.deep-link"
MAX_AGE = 3600
DL_SETTINGS = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"
CHOICES = {"tutor": (gettext_lazy("Course tutor (chat)"),
                     gettext_lazy("Students ask questions about the course texts and get answers with sources."))}


def choices():
    """[(key, title, description)] of what can be placed."""
    return [(key, title, text) for key, (title, text) in CHOICES.items()]


def make_token(launch, membership):
    """A signed token carrying the deep-linking request (return URL, data, deployment) to the choice form."""
    body = launch.get_launch_data()
    dl = body.get(DL_SETTINGS) or {}
    return signing.dumps({
        "r": launch._registration.model.pk, "d": body["https://purl.imsglobal.org/spec/lti/claim/deployment_id"],
        "url": dl.get("deep_link_return_url", ""), "data": dl.get("data"), "c": membership.course_id,
    }, salt=SALT, compress=True)


def response_for(request_data, choice, launch_url):
    """(signed response JWT, return URL) placing `choice`; LaunchRejected on a bad choice."""
    from lti.launch import LaunchRejected

    if choice not in CHOICES:
        raise LaunchRejected(_("Please choose what to place."), f"unknown deep linking choice {choice!r}")
    registration = Registration.objects.filter(pk=request_data["r"], status=Registration.ACTIVE).first()
    if registration is None or not request_data["url"]:
        raise LaunchRejected(_("The learning platform is no longer registered."), "deep linking registration gone")
    title, _text = CHOICES[choice]
    resource = (DeepLinkResource().set_url(launch_url).set_title(str(title))
                .set_custom_params({"placement": choice}))
    link = DeepLink(to_pylti(registration), request_data["d"],
                    {"deep_link_return_url": request_data["url"], "data": request_data["data"]})
    message = link.get_message_jwt([resource])
    if request_data["data"] is None:
        message.pop("https://purl.imsglobal.org/spec/lti-dl/claim/data")
    return link.encode_jwt(message), request_data["url"]
