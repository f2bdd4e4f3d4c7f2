"""The LTI app's part of a person's data and of the daily retention run, registered with config.privacy in
LtiConfig.ready(): the person's LMS identities (export; erasure: the account's deletion cascades), finding an
account by its LMS identity, and pruning used launch nonces."""

from lti.models import LtiUser

TABLES = {"lti.ltiuser": "the LMS's subject id and, only if the LMS shares it, the person's name"}


def find_person(issuer, sub):
    """The account of the LMS identity (issuer, subject), or None (each registration of the platform has its own
    link, all to the same account)."""
    identity = LtiUser.objects.select_related("user").filter(registration__issuer=issuer, sub=sub).first()
    return identity.user if identity else None


def export_person(user):
    """The person's LMS identities: platform, subject, and the name where the LMS shares it."""
    return {"lti_identities": [{"platform": lti.registration.issuer, "subject": lti.sub, "name": lti.name}
                               for lti in LtiUser.objects.filter(user=user).select_related("registration")]}


def purge_nonces():
    """The retention run's part: used launch nonces older than a day."""
    from lti.launch import prune_nonces  # the launch's module (pylti1p3) is not loaded at startup for this

    return {"nonces": prune_nonces()}


def register():
    """Register the above with config.privacy (called from LtiConfig.ready())."""
    from config import privacy

    privacy.register_person_data(TABLES, export=export_person)
    privacy.register_person_finder(find_person)
    privacy.register_retention(purge_nonces)
