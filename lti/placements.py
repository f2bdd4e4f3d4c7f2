"""What can be placed in a course by deep linking, and where a launch of a placed link lands.

lti knows the protocol, not what the tool offers: the tool's apps register their placeable things here in
their ``AppConfig.ready()`` (tutor registers the chat and its released question sets). A provider answers
three questions:

- ``choices(course_id)``: the Choice items a lecturer may place in this course now;
- ``chosen(course_id, key, graded)``: the Choice for a key the lecturer picked (None: not this provider's, or
  not placeable in this course); ``graded`` says the lecturer asked for a gradebook column;
- ``land(membership, custom)``: for a launch of a placed link (its custom parameters), a Landing, or
  None when the link is not this provider's;
- optionally ``hint(course_id)``: a line for the lecturer on the choice page ("" for none).

A Landing names the page the person lands on and the resourceId of the placed thing, under which lti keeps
the launch's AGS line item (``LtiLineItem``) for grade reports.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class LineItemSpec:
    """The gradebook column a graded placement asks the platform to create."""

    label: str
    score_maximum: int
    resource_id: str
    tag: str = ""


@dataclass(frozen=True)
class Choice:
    """One placeable thing: its key in the choice form, title and description, the custom parameters of the
    placed link, and the line item a graded placement creates (None: it cannot be graded)."""

    key: str
    title: str
    description: str
    custom: dict = field(default_factory=dict)
    line_item: LineItemSpec | None = None


@dataclass(frozen=True)
class Landing:
    """Where a launch of a placed link lands (url; None: the default landing) and the placed thing's resourceId."""

    url: str | None
    resource_id: str | None = None


_providers = []
_default = []


def register(provider, *, default=False):
    """Add a provider (see the module docstring); default=True: its landing is where any other launch lands."""
    if provider not in _providers:
        _providers.append(provider)
    if default:
        _default[:] = [provider]


def choices(course_id):
    """Every Choice that may be placed in the course, in the order the providers were registered."""
    return [choice for provider in _providers for choice in provider.choices(course_id)]


def hints(course_id):
    """The providers' lines for the lecturer on the choice page."""
    return [text for provider in _providers if (text := getattr(provider, "hint", lambda _id: "")(course_id))]


def chosen(course_id, key, graded=False):
    """The Choice for a picked key in this course, or None."""
    for provider in _providers:
        found = provider.chosen(course_id, key, graded)
        if found is not None:
            return found
    return None


def land(membership, custom):
    """The Landing of a launch with these custom parameters; the default provider's when no other claims it."""
    for provider in _providers:
        found = provider.land(membership, custom or {})
        if found is not None:
            if found.url is None and _default:
                return Landing(_default[0].land(membership, {}).url, found.resource_id)
            return found
    return _default[0].land(membership, {}) if _default else Landing(None)
