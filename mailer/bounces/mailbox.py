"""Bounces delivered to a mailbox: poll it over IMAP, for providers that deliver them nowhere else.

BOUNCE_MAILBOX_URL names the mailbox (``imaps://user:password@host[:port]/FOLDER``, checked at
start); beat runs a poll every BOUNCE_MAILBOX_INTERVAL seconds. A poll takes the unread messages
not yet deleted, queues each one as the MTA's pipe would (``intake.queue_message``) and only
then flags it \\Deleted, expunging at the end: a crash between queueing and deleting queues the
message again next time, and the worker still handles it once (a report's Message-ID makes its
bounce event unique). Messages are fetched with ``BODY.PEEK[]``, so one read but not queued stays
unread. A Redis lock keeps two polls (two beats, a beat and the CLI) off the mailbox at once.
"""

from __future__ import annotations

import imaplib
import logging
import re
import ssl
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from flask import current_app
from kombu.exceptions import OperationalError
from redis.exceptions import LockError

from ..redis_client import get_redis, redis_key
from .intake import queue_message

log = logging.getLogger(__name__)

#: The beat task that polls, by name.
POLL_TASK = "mailer.bounces.poll_mailbox"
#: Seconds for connecting and for each server reply.
TIMEOUT = 30.0
#: Messages read per poll; the rest wait for the next one.
MAX_PER_POLL = 500
#: A larger message is no bounce we can read: it is marked read, logged and left for a person.
MAX_FETCH = 10 * 1024 * 1024
#: Seconds after which a crashed poll's lock lapses.
LOCK_TIMEOUT = 900
_UID = re.compile(rb"\bUID (\d+)")
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")


class MailboxError(Exception):
    """The mailbox cannot be read now (connection, TLS, login, folder); the next poll tries again."""


@dataclass(frozen=True)
class Mailbox:
    """Where BOUNCE_MAILBOX_URL points and how to log in (the configuration has checked the URL)."""

    host: str
    port: int
    tls: bool
    user: str
    password: str
    folder: str

    @classmethod
    def from_url(cls, url: str) -> Mailbox:
        """Read ``imaps://user:password@host[:port]/FOLDER`` (percent-encoded; folder INBOX by default)."""
        parts = urlsplit(url)
        tls = parts.scheme == "imaps"
        return cls(
            host=parts.hostname or "",
            port=parts.port or (993 if tls else 143),
            tls=tls,
            user=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            folder=unquote(parts.path.lstrip("/")) or "INBOX",
        )


def poll_mailbox() -> int | None:
    """Queue the mailbox's unread messages, deleting each once queued; how many (None: another poll runs).

    Raises MailboxError when the server cannot be reached, refuses the login or lacks the folder.
    """
    lock = get_redis().lock(redis_key("bounces:mailbox-poll"), timeout=LOCK_TIMEOUT)
    if not lock.acquire(blocking=False):
        return None
    try:
        with _session(Mailbox.from_url(current_app.config["BOUNCE_MAILBOX_URL"])) as imap:
            return _drain(imap)
    finally:
        with suppress(LockError):  # it lapsed during a very long poll
            lock.release()


@contextmanager
def _session(box: Mailbox) -> Iterator[imaplib.IMAP4]:
    """A logged-in connection with the folder selected; server and network failures become MailboxError."""
    try:
        imap = _connect(box)
    except (imaplib.IMAP4.error, OSError) as exc:
        raise MailboxError(f"cannot connect to {box.host}:{box.port}: {exc}") from None
    try:
        imap.login(box.user, box.password)
        _ok(imap.select(_quoted(box.folder)), f"cannot open folder {box.folder!r}")
        yield imap
    except (imaplib.IMAP4.error, OSError) as exc:
        raise MailboxError(f"{box.host}:{box.port}: {exc}") from None
    finally:
        with suppress(imaplib.IMAP4.error, OSError):
            imap.logout()


def _connect(box: Mailbox) -> imaplib.IMAP4:
    """Open the connection: TLS checked against the system's CAs and the host name (plain only to loopback)."""
    if box.tls:
        return imaplib.IMAP4_SSL(box.host, box.port, ssl_context=ssl.create_default_context(), timeout=TIMEOUT)
    return imaplib.IMAP4(box.host, box.port, timeout=TIMEOUT)


def _drain(imap: imaplib.IMAP4) -> int:
    """Queue up to MAX_PER_POLL unread messages, each flagged \\Deleted once queued, then expunge; how many."""
    queued = 0
    for uid, size in _sizes(imap, _unread(imap)[:MAX_PER_POLL]):
        if size > MAX_FETCH:
            _flag(imap, uid, "\\Seen")
            log.warning(
                "bounce mailbox: message UID %s has %d bytes (over %d), marked read and left", uid, size, MAX_FETCH
            )
            continue
        raw = _fetch(imap, uid)
        if raw is None:
            continue  # removed by someone else meanwhile
        try:
            queue_message(raw)
        except OperationalError as exc:
            log.warning("bounce mailbox: the broker cannot take messages now, the rest waits: %s", exc)
            break
        _flag(imap, uid, "\\Deleted")
        queued += 1
    _ok(imap.expunge(), "EXPUNGE failed")
    return queued


def _unread(imap: imaplib.IMAP4) -> list[bytes]:
    """UIDs of the messages neither read nor deleted, oldest first."""
    data = _ok(imap.uid("SEARCH", "UNSEEN", "UNDELETED"), "SEARCH failed")
    return sorted((uid for line in data if line for uid in line.split()), key=int)


def _sizes(imap: imaplib.IMAP4, uids: list[bytes]) -> list[tuple[bytes, int]]:
    """Each message's UID and size in bytes (RFC822.SIZE), in one command."""
    if not uids:
        return []
    data = _ok(imap.uid("FETCH", b",".join(uids).decode(), "(RFC822.SIZE)"), "FETCH RFC822.SIZE failed")
    sizes = []
    for line in data:
        text = line[0] if isinstance(line, tuple) else line
        uid, size = _UID.search(text or b""), _SIZE.search(text or b"")
        if uid and size:
            sizes.append((uid.group(1), int(size.group(1))))
    return sorted(sizes, key=lambda pair: int(pair[0]))


def _fetch(imap: imaplib.IMAP4, uid: bytes) -> bytes | None:
    """The whole message, without marking it read (None when it is gone)."""
    data = _ok(imap.uid("FETCH", uid.decode(), "(BODY.PEEK[])"), f"FETCH {uid.decode()} failed")
    return next((part[1] for part in data if isinstance(part, tuple)), None)


def _flag(imap: imaplib.IMAP4, uid: bytes, flag: str) -> None:
    """Add ``flag`` to the message."""
    _ok(imap.uid("STORE", uid.decode(), "+FLAGS.SILENT", f"({flag})"), f"STORE {flag} failed")


def _ok(answer: tuple[str, list], failure: str) -> list:
    """The data of a tagged OK answer; any other answer raises with the server's words."""
    kind, data = answer
    if kind != "OK":
        words = b" ".join(d for d in data if isinstance(d, bytes)).decode(errors="replace")
        raise imaplib.IMAP4.error(f"{failure}: {words}")
    return data


def _quoted(folder: str) -> str:
    """A folder name as an IMAP quoted string (names may hold spaces)."""
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'
