"""The doctor's two ways of looking outside: DNS TXT records (dnspython) and HTTP requests (urllib).

Nothing here knows about mailer's settings: callers pass the resolver address, the URL and the
method, and get plain answers (texts, a status) or a ``ProbeError`` that says in words what failed.
"""

from __future__ import annotations

import socket
import ssl
import urllib.error
import urllib.request
from email.message import Message
from http.client import HTTPException
from typing import IO
from urllib.request import Request

import dns.exception
import dns.resolver

#: Seconds a DNS lookup or an HTTP request may take, every retry included.
TIMEOUT = 5.0

#: Sent with every request: some sites refuse Python's default User-Agent.
USER_AGENT = "mailer-doctor/1 (deliverability check)"


class ProbeError(Exception):
    """A lookup or a request that got no usable answer; the message says why in plain words."""


def txt_records(name: str, nameserver: tuple[str, int] | None = None) -> list[str]:
    """The TXT records at ``name``, each one's strings joined; [] when the name or the record does not exist."""
    try:
        resolver = dns.resolver.Resolver(configure=nameserver is None)
    except dns.resolver.NoResolverConfiguration:
        raise ProbeError("this machine has no DNS resolver configured; set DNS_NAMESERVER") from None
    if nameserver is not None:
        resolver.nameservers, resolver.port = [nameserver[0]], nameserver[1]
    try:
        answer = resolver.resolve(name, "TXT", lifetime=TIMEOUT, search=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except dns.exception.Timeout:
        raise ProbeError(
            f"no DNS answer for {name} within {TIMEOUT:g} s (DNS_NAMESERVER, or the system resolver)"
        ) from None
    except dns.exception.DNSException as exc:
        raise ProbeError(f"the DNS lookup of {name} failed ({exc.__class__.__name__}: {exc})") from None
    return [b"".join(record.strings).decode("utf-8", "replace") for record in answer]


class _SameMethodRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects keeping the method (urllib turns a redirected HEAD into a GET)."""

    def redirect_request(
        self, req: Request, fp: IO[bytes], code: int, msg: str, headers: Message, newurl: str
    ) -> Request | None:
        """The redirected request, with the original method."""
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None:
            new.method = req.get_method()
        return new


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Report a redirect as the answer instead of following it."""

    def redirect_request(
        self, req: Request, fp: IO[bytes], code: int, msg: str, headers: Message, newurl: str
    ) -> Request | None:
        """None: urllib then raises the 3xx as an HTTPError."""
        return None


def http_status(url: str, method: str = "GET", data: bytes | None = None, follow: bool = True) -> tuple[int, str]:
    """Send one request; return the final status and the start of the body (HTTP errors are statuses too).

    ``follow`` follows redirects with the same method; without it a 3xx is the answer. No cookies
    are sent. Raises ProbeError when no answer comes (refused, timed out, TLS, bad URL).
    """
    opener = urllib.request.build_opener(_SameMethodRedirects if follow else _NoRedirects)
    request = Request(url, data=data, method=method, headers={"User-Agent": USER_AGENT})
    if data is not None:
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with opener.open(request, timeout=TIMEOUT) as response:
            return response.status, _start(response)
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, _start(exc)
    except (urllib.error.URLError, OSError, HTTPException, ValueError) as exc:
        raise ProbeError(_reason(exc)) from None


def _start(response: object) -> str:
    """The first 64 KB of a response body, as text (enough to recognise a page)."""
    try:
        return response.read(65536).decode("utf-8", "replace")  # type: ignore[attr-defined]
    except (OSError, HTTPException):
        return ""


def _reason(exc: Exception) -> str:
    """Why a request got no answer, in words."""
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, TimeoutError | socket.timeout):
        return f"no answer within {TIMEOUT:g} s"
    if isinstance(reason, ssl.SSLCertVerificationError):
        return f"its TLS certificate is not trusted ({reason.verify_message})"
    return f"unreachable ({reason})"
