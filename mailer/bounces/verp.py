"""VERP: a per-email envelope sender, so a bounce says which delivery (or subscriber) it is about.

``news+bounce@example.org`` as BOUNCE_ADDRESS gives envelope senders such as
``news+bounce+d4f2-7c1e9a0b3d5f6a21@example.org``: after the configured local part, a kind
(``d`` a digest delivery, ``s`` a subscriber's confirmation email), the id in base 36 and 64 bits
of an HMAC over both. Only mailer can make one, so nobody can forge a bounce for somebody else's
address. Everything is lower case: some servers fold the case of local parts.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from functools import lru_cache

from flask import current_app

from ..mail.outbox import envelope_sender

DELIVERY = "d"
SUBSCRIBER = "s"
KINDS = (DELIVERY, SUBSCRIBER)
MAC_SIZE = 16
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class Tag:
    """What a VERP address names: a delivery (``d``) or a subscriber (``s``), by id."""

    kind: str
    id: int


@lru_cache(maxsize=8)
def _key(secret: str) -> bytes:
    """The VERP key, derived from SECRET_KEY once (never the key itself)."""
    return hmac.new(secret.encode(), b"mailer.verp", hashlib.sha256).digest()


def _mac(kind: str, number: str) -> str:
    """The MAC of a kind and a base-36 id."""
    digest = hmac.new(_key(str(current_app.config["SECRET_KEY"])), f"{kind}{number}".encode(), hashlib.sha256)
    return digest.hexdigest()[:MAC_SIZE]


def _base36(value: int) -> str:
    """``value`` in base 36, lower case."""
    digits = ""
    while True:
        value, rest = divmod(value, 36)
        digits = _DIGITS[rest] + digits
        if not value:
            return digits


def verp_address(kind: str, ident: int) -> str:
    """The envelope sender for an email about ``kind`` ``ident``: BOUNCE_ADDRESS with a signed tag."""
    if kind not in KINDS or ident < 0:
        raise ValueError(f"no VERP tag for {kind!r} {ident!r}")
    local, _, domain = envelope_sender().rpartition("@")
    number = _base36(ident)
    return f"{local}+{kind}{number}-{_mac(kind, number)}@{domain}"


def read_verp(address: str) -> Tag | None:
    """The tag of a VERP address this installation made, or None (not ours, not VERP, or forged)."""
    local, _, domain = address.strip().strip("<>").lower().rpartition("@")
    base_local, _, base_domain = envelope_sender().lower().rpartition("@")
    prefix = base_local + "+"
    if domain != base_domain or not local.startswith(prefix):
        return None
    tag, _, mac = local[len(prefix) :].rpartition("-")
    kind, number = tag[:1], tag[1:]
    if kind not in KINDS or not number or any(c not in _DIGITS for c in number) or len(number) > 12:
        return None
    if not hmac.compare_digest(mac, _mac(kind, number)):
        return None
    return Tag(kind, int(number, 36))
