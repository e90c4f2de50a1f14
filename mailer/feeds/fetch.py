"""One bounded GET of a feed: http(s) only, a deadline, a size cap, few redirects, conditional on what came last time.

Every way it can fail ends as a FetchError whose message is a short sentence for people
("timed out after 20 s", "the server answered HTTP 500"), which the console and the CLI show.
It knows nothing of the database: it takes a URL and what the server said last time.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx

MAX_REDIRECTS = 5
#: Connecting may take at most this long (the deadline may cut it shorter).
CONNECT_SECONDS = 10.0
#: The longest validator we keep (the columns' sizes); a longer one is not stored, as a cut one would never match.
MAX_ETAG, MAX_LAST_MODIFIED = 255, 64
ACCEPT = "application/rss+xml, application/atom+xml, text/calendar, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"


class FetchError(Exception):
    """A fetch that brought nothing; the message says why in a few words."""


@dataclass(frozen=True)
class Limits:
    """How long a fetch may take in all (seconds) and how many bytes its body may have."""

    timeout: float
    max_bytes: int
    user_agent: str
    #: False: only addresses on the public internet (no loopback, private, link-local or reserved ones).
    allow_private: bool = True


@dataclass(frozen=True)
class Fetched:
    """What the server sent: the body (None for 304 Not Modified) and its validators for the next fetch."""

    body: bytes | None
    etag: str | None
    last_modified: str | None
    url: str


def fetch(url: str, etag: str | None, last_modified: str | None, limits: Limits) -> Fetched:
    """GET ``url`` (If-None-Match / If-Modified-Since when known); raise FetchError with the reason in words.

    The deadline is checked before each request and after every chunk of the body, and each wait for
    the network is bounded by the time left when its request started."""
    deadline = time.monotonic() + limits.timeout
    headers = {"User-Agent": limits.user_agent, "Accept": ACCEPT}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    try:
        with httpx.Client(follow_redirects=False, trust_env=False) as client:
            for _ in range(MAX_REDIRECTS + 1):
                _check_scheme(url)
                target, pinned, extensions = _pinned(url, limits.allow_private)
                with client.stream(
                    "GET", target, headers=headers | pinned, timeout=_timeout(deadline, limits), extensions=extensions
                ) as response:
                    location = response.headers.get("location")
                    if response.is_redirect and location:
                        url = str(httpx.URL(url).join(location))
                        continue
                    return _answer(response, url, deadline, limits)
    except httpx.TimeoutException:
        raise FetchError(f"timed out after {_seconds(limits.timeout)}") from None
    except httpx.ConnectError as exc:
        raise FetchError(f"could not connect: {_reason(exc)}") from None
    except httpx.DecodingError:
        raise FetchError("the server sent a compressed body that could not be read") from None
    except (httpx.InvalidURL, httpx.UnsupportedProtocol):
        raise FetchError("the address cannot be fetched") from None
    except httpx.TransportError as exc:
        raise FetchError(f"the connection failed: {_reason(exc)}") from None
    raise FetchError(f"more than {MAX_REDIRECTS} redirects")


def _check_scheme(url: str) -> None:
    """Only http:// and https:// (a redirect may point anywhere)."""
    if urlsplit(url).scheme.lower() not in ("http", "https"):
        raise FetchError(f"not an http:// or https:// address: {url[:200]}")


def _pinned(url: str, allow_private: bool) -> tuple[str, dict[str, str], dict[str, str]]:
    """Where to connect for ``url``: unchanged when private networks are allowed, else its public address.

    The host is resolved here and every address it has must be on the public internet; the request
    then goes to that address (Host header and TLS server name kept), so a name that resolves
    differently a moment later (DNS rebinding) cannot lead the fetch inside the network."""
    if allow_private:
        return url, {}, {}
    parts = urlsplit(url)
    host, https = parts.hostname or "", parts.scheme.lower() == "https"
    try:
        port = parts.port or (443 if https else 80)
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, ValueError):
        raise FetchError(f"could not connect: no address found for {host[:200]}") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in found]
    if not addresses or not all(address.is_global for address in addresses):
        raise FetchError(f"{host[:200]} is on a private or local network, which feeds may not reach")
    first = addresses[0]
    netloc = (f"[{first}]" if first.version == 6 else str(first)) + (f":{parts.port}" if parts.port else "")
    target = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    host_header = parts.netloc.rsplit("@", 1)[-1]
    return target, {"Host": host_header}, {"sni_hostname": host} if https else {}


def _timeout(deadline: float, limits: Limits) -> httpx.Timeout:
    """Timeouts for one request: whatever is left of the deadline, and less for connecting."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise FetchError(f"timed out after {_seconds(limits.timeout)}")
    return httpx.Timeout(left, connect=min(left, CONNECT_SECONDS))


def _answer(response: httpx.Response, url: str, deadline: float, limits: Limits) -> Fetched:
    """The 200's body read within the limits, or 304's nothing; any other status is a FetchError."""
    etag = _kept(response.headers.get("etag"), MAX_ETAG)
    last_modified = _kept(response.headers.get("last-modified"), MAX_LAST_MODIFIED)
    if response.status_code == 304:
        return Fetched(None, etag, last_modified, url)
    if response.status_code != 200:
        raise FetchError(f"the server answered HTTP {response.status_code}")
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_bytes:
        raise FetchError(f"larger than {_size(limits.max_bytes)}")
    body, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limits.max_bytes:
            raise FetchError(f"larger than {_size(limits.max_bytes)}")
        if time.monotonic() > deadline:
            raise FetchError(f"timed out after {_seconds(limits.timeout)}")
        body.append(chunk)
    return Fetched(b"".join(body), etag, last_modified, url)


def _kept(value: str | None, limit: int) -> str | None:
    """A validator header as stored: None when absent, too long or not one line."""
    if not value or len(value) > limit or not value.isprintable():
        return None
    return value


def _reason(exc: Exception) -> str:
    """An exception's message without its ``[Errno 111]`` prefix, cut to one short line."""
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", str(exc).strip()) or type(exc).__name__
    return " ".join(text.split())[:200]


def _seconds(value: float) -> str:
    """``20 s``, ``1.5 s``."""
    return f"{value:g} s"


def _size(value: int) -> str:
    """``5 MB``, ``512 KB``, ``1500 bytes``: a size limit in words."""
    for unit, scale in (("MB", 1024 * 1024), ("KB", 1024)):
        if value >= scale and value % scale == 0:
            return f"{value // scale} {unit}"
    return f"{value} bytes"
