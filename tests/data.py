"""Test data that several test modules share: a DKIM key, and the meetings and news a digest is made of."""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable
from typing import NamedTuple

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


class KeyPair(NamedTuple):
    """A DKIM test key: the private key as PEM and the DNS TXT record that publishes its public half."""

    pem: bytes
    record: bytes

    def dns(self, selector: bytes, domain: bytes) -> Callable[..., bytes]:
        """A dkimpy DNS lookup publishing the record at ``selector._domainkey.domain`` and asked for nothing else."""

        def lookup(name: bytes, timeout: int = 5) -> bytes:
            """The TXT record, for the one name it is published at."""
            assert name == b"%s._domainkey.%s." % (selector, domain)
            return self.record

        return lookup


@functools.cache
def dkim_key(bits: int = 2048) -> KeyPair:
    """An RSA key of ``bits`` bits, made once per test process (making one takes a noticeable moment)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return KeyPair(pem, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public))


def meeting(**overrides: object) -> dict[str, object]:
    """The 58th SMEWG meeting (held in Lima) as a content file holds it, with ``overrides`` applied."""
    return {
        "slug": "smewg-58",
        "title": "58th SMEWG Meeting",
        "kind": "working-group",
        "number": 58,
        "start_date": "2024-03-04",
        "end_date": "2024-03-05",
        "city": "Lima",
        "economy": "Peru",
        "status": "held",
        **overrides,
    }


def news_item(**overrides: object) -> dict[str, object]:
    """A news item as a content file holds it, with ``overrides`` applied."""
    return {
        "slug": "nine-projects",
        "title": "Nine projects under way",
        "published_on": "2023-12-15",
        "body": "The SMEWG is implementing nine APEC-funded projects.",
        **overrides,
    }


def digest_content() -> dict[str, list[dict[str, object]]]:
    """A content file for a digest: a held meeting, an upcoming ministerial meeting and one news item."""
    ministerial = {
        "slug": "smemm-30",
        "title": "30th SME Ministerial Meeting",
        "kind": "ministerial",
        "start_date": "2024-09-05",
        "economy": "Peru",
        "status": "upcoming",
    }
    return {"meetings": [meeting(link="https://www.apec.org/"), ministerial], "news": [news_item()]}
