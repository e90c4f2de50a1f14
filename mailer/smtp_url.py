"""SMTP_URL: what it may say and what it means, parsed once for the configuration and the transport.

It lives at the bottom, beside ``config``, so the configuration can check the URL at start
without importing the transport that uses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit

#: Seconds for connecting and for each reply, unless SMTP_URL says ``?timeout=``.
TIMEOUT = 30.0

#: Hosts where credentials may go without TLS (they never leave the machine).
LOOPBACK = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class SMTPSettings:
    """What SMTP_URL says."""

    host: str
    port: int
    implicit_tls: bool
    starttls: bool
    username: str | None
    password: str | None
    timeout: float = TIMEOUT

    @classmethod
    def from_url(cls, url: str) -> SMTPSettings:
        """Parse ``smtp://user:pass@host:port?starttls=1&timeout=10`` or ``smtps://...`` (ValueError if bad)."""
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("SMTP_URL must be smtp://host[:port] or smtps://host[:port]")
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        unknown = set(query) - {"starttls", "timeout"}
        if unknown:
            raise ValueError(f"SMTP_URL has unknown parameters: {', '.join(sorted(unknown))}")
        implicit, starttls = parts.scheme == "smtps", _starttls(query.get("starttls", "0"))
        if implicit and starttls:
            raise ValueError("SMTP_URL: smtps:// is already TLS; starttls=1 is for smtp://")
        if parts.username and not (implicit or starttls or parts.hostname in LOOPBACK):
            raise ValueError("SMTP_URL: credentials would cross the network unencrypted; use smtps:// or ?starttls=1")
        return cls(
            host=parts.hostname,
            port=_port_of(parts, implicit),
            implicit_tls=implicit,
            starttls=starttls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
            timeout=_timeout(query.get("timeout")),
        )


def _starttls(value: str) -> bool:
    """The ``starttls`` flag of SMTP_URL."""
    flags = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
    if value.lower() not in flags:
        raise ValueError(f"SMTP_URL: starttls must be 1 or 0, not {value!r}")
    return flags[value.lower()]


def _port_of(parts: SplitResult, implicit: bool) -> int:
    """The port of SMTP_URL: as given, else 465 for smtps:// and 25 for smtp://."""
    try:
        port = parts.port
    except ValueError:
        raise ValueError("SMTP_URL has an invalid port") from None
    return port or (465 if implicit else 25)


def _timeout(value: str | None) -> float:
    """The ``timeout`` of SMTP_URL in seconds (TIMEOUT when absent)."""
    try:
        timeout = TIMEOUT if value is None else float(value)
    except ValueError:
        raise ValueError("SMTP_URL: timeout must be a number of seconds") from None
    if not 0 < timeout < 3600:
        raise ValueError("SMTP_URL: timeout must be between 0 and 3600 seconds")
    return timeout
