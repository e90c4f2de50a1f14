"""Signed, purpose-bound tokens for links in emails.

A token carries a purpose (its salt), so a preferences token can never confirm and a
confirmation token can never unsubscribe. Expiry is checked on read; single use and
revocation are the caller's business through values it puts in the payload (a nonce or a
version number it compares with the database).
"""

from __future__ import annotations

import hmac
import time
from functools import lru_cache
from typing import Any

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from itsdangerous.encoding import base64_encode, int_to_bytes

PURPOSES = ("confirm", "manage", "unsubscribe", "archive", "password-reset", "totp-setup", "cadence")


class TokenInvalid(Exception):
    """The token is malformed, tampered with, or for another purpose."""


class TokenExpired(TokenInvalid):
    """The token was genuine but is too old."""


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    """Return the serializer for one purpose."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    return _cached_serializer(current_app.config["SECRET_KEY"], purpose)


@lru_cache(maxsize=64)
def _cached_serializer(secret_key: str, purpose: str) -> URLSafeTimedSerializer:
    """One serializer per key and purpose."""
    return URLSafeTimedSerializer(secret_key, salt=f"mailer.{purpose}")


class _Minter:
    """Makes exactly the token ``serializer.dumps`` makes, with the key derived once.

    A digest signs two links per recipient; itsdangerous derives the key and builds a signer
    on every call, which cost more than building the whole message. The payload encoding, the
    derived key and the HMAC are itsdangerous's own; only the assembly is done here, and
    ``read_token`` (itsdangerous) checks every token.
    """

    def __init__(self, serializer: URLSafeTimedSerializer) -> None:
        signer = serializer.make_signer()
        self._dump = serializer.dump_payload
        self._mac = hmac.new(signer.derive_key(), digestmod=signer.digest_method)
        self._sep = signer.sep
        self._second, self._stamp = -1, b""

    def mint(self, payload: Any) -> str:
        """The signed token for ``payload``, timestamped now."""
        now = int(time.time())
        if now != self._second:
            self._second, self._stamp = now, self._sep + base64_encode(int_to_bytes(now))
        value = self._dump(payload) + self._stamp
        mac = self._mac.copy()
        mac.update(value)
        return (value + self._sep + base64_encode(mac.digest())).decode("ascii")


@lru_cache(maxsize=64)
def _minter(secret_key: str, purpose: str) -> _Minter:
    """One minter per key and purpose."""
    return _Minter(_cached_serializer(secret_key, purpose))


def make_token(purpose: str, payload: Any) -> str:
    """Sign ``payload`` for ``purpose``."""
    _serializer(purpose)  # refuses an unknown purpose
    return _minter(current_app.config["SECRET_KEY"], purpose).mint(payload)


def read_token(purpose: str, token: str, max_age: int | None = None) -> Any:
    """Return the payload of a token for ``purpose``; raise TokenExpired or TokenInvalid."""
    if not isinstance(token, str) or len(token) > 512:
        raise TokenInvalid("malformed token")
    try:
        return _serializer(purpose).loads(token, max_age=max_age)
    except SignatureExpired:
        raise TokenExpired("token expired") from None
    except BadSignature:
        raise TokenInvalid("bad signature") from None
