"""Signed, purpose-bound tokens for links in emails.

A token carries a purpose (its salt), so a preferences token can never confirm and a
confirmation token can never unsubscribe. Expiry is checked on read; single use and
revocation are the caller's business through values it puts in the payload (a nonce or a
version number it compares with the database).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

PURPOSES = ("confirm", "manage", "unsubscribe", "archive")


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
    """One serializer per key and purpose: a send loop signs two links per message."""
    return URLSafeTimedSerializer(secret_key, salt=f"mailer.{purpose}")


def make_token(purpose: str, payload: Any) -> str:
    """Sign ``payload`` for ``purpose``."""
    return _serializer(purpose).dumps(payload)


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
