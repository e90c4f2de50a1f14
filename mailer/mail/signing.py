"""DKIM signing of built messages with dkimpy (relaxed/relaxed, rsa-sha256)."""

from __future__ import annotations

from collections.abc import Mapping

import dkim

#: (selector, domain, private key PEM), as ``MessageFactory(dkim=...)`` takes it.
DKIMKey = tuple[bytes, bytes, bytes]

#: Header fields the signature covers when present. Each is listed twice (over-signed), so a
#: copy of a field added in transit breaks the signature instead of slipping in unsigned.
SIGNED_HEADERS = (
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"reply-to",
    b"list-id",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"mime-version",
    b"content-type",
)


def dkim_from_config(config: Mapping[str, object]) -> DKIMKey | None:
    """The DKIM key from DKIM_SELECTOR, DKIM_DOMAIN and DKIM_KEY (loaded by config.py), or None."""
    selector, domain, key = (config.get(name) for name in ("DKIM_SELECTOR", "DKIM_DOMAIN", "DKIM_KEY"))
    if not (selector and domain and key):
        return None
    return str(selector).encode("ascii"), str(domain).encode("ascii"), bytes(key)  # type: ignore[arg-type]


def sign(message: bytes, key: DKIMKey) -> bytes:
    """The ``DKIM-Signature`` header field (CRLF-terminated) to put in front of ``message``."""
    selector, domain, private_key = key
    head = b"\r\n" + message.partition(b"\r\n\r\n")[0].lower()
    present = [name for name in SIGNED_HEADERS if b"\r\n" + name + b":" in head]
    return dkim.sign(
        message,
        selector,
        domain,
        private_key,
        canonicalize=(b"relaxed", b"relaxed"),
        include_headers=present + present,
    )
