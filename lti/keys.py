"""The tool's RSA key pairs: created on demand, rotated, published as a JWKS."""

import json

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.db import IntegrityError, transaction
from django.utils import timezone
from jwcrypto.jwk import JWK

from lti.models import ToolKey


def new_key_pair():
    """(private PEM, public PEM) of a fresh 2048-bit RSA key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


def active_key():
    """The tool key that signs now; created on first use. Two first uses at once (the lti worker's threads posting
    a score and syncing a roster on a fresh installation) agree on one key: the database allows one active key, and
    whoever loses the race takes the winner's."""
    key = ToolKey.objects.filter(active=True).first()
    if key is None:
        try:
            with transaction.atomic():
                key = _create_key()
        except IntegrityError:
            key = ToolKey.objects.get(active=True)
    return key


@transaction.atomic
def rotate():
    """Make a new active key; the old one is retired but stays in the JWKS for the grace period."""
    ToolKey.objects.filter(active=True).update(active=False, retired_at=timezone.now())
    return _create_key()


def _create_key():
    private, public = new_key_pair()
    kid = JWK.from_pem(public.encode()).thumbprint()
    return ToolKey.objects.create(kid=kid, private_pem=private, public_pem=public)


def public_jwk(public_pem, kid):
    """The JWK (dict) of a public PEM, with kid, alg RS256 and use sig."""
    jwk = json.loads(JWK.from_pem(public_pem.encode()).export_public())
    jwk.update({"kid": kid, "alg": "RS256", "use": "sig"})
    return jwk


def tool_jwks():
    """The tool's JWKS: the active key and retired keys still inside the grace period."""
    active_key()
    return {"keys": [public_jwk(k.public_pem, k.kid) for k in ToolKey.objects.published()]}
