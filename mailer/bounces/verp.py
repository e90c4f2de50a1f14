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
from collections.abc import Callable
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


class _Signer:
    """Makes and checks one installation's VERP addresses: BOUNCE_ADDRESS split and the key derived once.

    The send engine asks for one address per message, so the per-call work is a copy of a keyed
    HMAC and a format, not a key derivation and an address parse.
    """

    def __init__(self, secret: str, bounce_address: str) -> None:
        local, _, domain = bounce_address.lower().rpartition("@")
        self.prefix, self.domain = local + "+", domain
        key = hmac.new(secret.encode(), b"mailer.verp", hashlib.sha256).digest()
        self._mac = hmac.new(key, digestmod=hashlib.sha256)

    def mac(self, kind: str, number: str) -> str:
        """The MAC of a kind and a base-36 id."""
        digest = self._mac.copy()
        digest.update(f"{kind}{number}".encode())
        return digest.hexdigest()[:MAC_SIZE]


@lru_cache(maxsize=8)
def _cached_signer(secret: str, bounce_address: str) -> _Signer:
    """One signer per key and bounce address."""
    return _Signer(secret, bounce_address)


def _signer() -> _Signer:
    """This app's signer."""
    return _cached_signer(str(current_app.config["SECRET_KEY"]), envelope_sender())


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
    return verp_maker(kind)(ident)


def verp_maker(kind: str) -> Callable[[int], str]:
    """``verp_address`` for one kind with this app's key and address bound once (a send loop calls it per message)."""
    if kind not in KINDS:
        raise ValueError(f"no VERP tag for {kind!r}")
    signer = _signer()

    def make(ident: int) -> str:
        if ident < 0:
            raise ValueError(f"no VERP tag for {kind!r} {ident!r}")
        number = _base36(ident)
        return f"{signer.prefix}{kind}{number}-{signer.mac(kind, number)}@{signer.domain}"

    return make


def read_verp(address: str) -> Tag | None:
    """The tag of a VERP address this installation made, or None (not ours, not VERP, or forged)."""
    local, _, domain = address.strip().strip("<>").lower().rpartition("@")
    signer = _signer()
    if domain != signer.domain or not local.startswith(signer.prefix):
        return None
    tag, _, mac = local[len(signer.prefix) :].rpartition("-")
    kind, number = tag[:1], tag[1:]
    if kind not in KINDS or not number or any(c not in _DIGITS for c in number) or len(number) > 12:
        return None
    if not hmac.compare_digest(mac, signer.mac(kind, number)):
        return None
    return Tag(kind, int(number, 36))
