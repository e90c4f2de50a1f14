"""What a message that came back says: a bounce (hard or soft), a complaint, an auto-reply, an unsubscribe.

Reading order, most authoritative first:

1. Auto-replies (RFC 3834 ``Auto-Submitted: auto-replied``, ``X-Autoreply``, ``Precedence:
   auto_reply``, out-of-office subjects) are ignored: they never count as a bounce. Reports and
   mail from a mailer daemon are never auto-replies (DSNs carry ``Auto-Submitted`` too).
2. Mail sent to the ``mailto:`` unsubscribe address (UNSUBSCRIBE_MAILTO) unsubscribes its sender.
3. ARF reports (RFC 5965, ``multipart/report; report-type=feedback-report``) are complaints.
4. DSNs (RFC 3464, ``multipart/report; report-type=delivery-status``): per recipient, ``Action:
   failed`` with a 5.x.x status is hard, with 4.x.x soft; ``delayed`` is a warning, ignored.
5. Anything else goes through flufl.bounce's detectors (Mailman's: Exim, Postfix, qmail, Exchange,
   Yahoo and other non-standard formats), permanent failures hard, temporary soft.

Who it is about: the VERP tag of the address it was sent to (our envelope sender, see verp.py)
when there is one; else the original message's Message-ID (a delivery), else the failed
recipient's address.
"""

from __future__ import annotations

import email
import enum
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from email.message import Message
from email.utils import getaddresses, parseaddr

from flufl.bounce import all_failures

#: A bounce message is read up to this size; the rest (usually the original's body) is not needed.
MAX_MESSAGE = 2 * 1024 * 1024
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_QUOTED_ID = re.compile(r"^Message-ID:\s*(<[^>\s]+>)", re.IGNORECASE | re.MULTILINE)
_OUT_OF_OFFICE = re.compile(
    r"^\s*(auto(matic)?[ -]?(reply|response|answer)|out of (the )?office|away from|abwesenheit|"
    r"absence|r[ée]ponse automatique|auto:|autoreply|vacation)",
    re.IGNORECASE,
)


_DAEMON = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|mailerdaemon|bounces?)@", re.IGNORECASE)


class Kind(enum.StrEnum):
    """What a message that came back means."""

    HARD = "hard"
    SOFT = "soft"
    COMPLAINT = "complaint"
    UNSUBSCRIBE = "unsubscribe"
    AUTO_REPLY = "auto_reply"
    UNKNOWN = "unknown"


@dataclass
class Report:
    """One message understood: its kind, who it names and why."""

    kind: Kind
    #: Addresses the message was delivered to (the envelope recipients, or the headers that carry them).
    sent_to: list[str] = field(default_factory=list)
    #: The failed or complaining recipients it names (original recipients, lower case).
    recipients: list[str] = field(default_factory=list)
    #: The Message-ID of our message it is about, when it quotes it.
    original_message_id: str | None = None
    #: The enhanced status code (5.1.1) and the server's words, for a bounce.
    status: str | None = None
    diagnostic: str | None = None
    #: The address that wrote (for an unsubscribe by mail).
    sender: str | None = None
    #: The report's own Message-ID: the same report received twice is handled once.
    message_id: str | None = None


def read_message(raw: bytes, sent_to: Sequence[str] = (), unsubscribe_address: str | None = None) -> Report:
    """Understand one raw RFC 5322 message delivered to ``sent_to`` (empty: read from its headers)."""
    msg = email.message_from_bytes(raw[:MAX_MESSAGE])
    recipients = [a.lower() for a in sent_to] or _delivered_to(msg)
    report = Report(Kind.UNKNOWN, sent_to=recipients, message_id=_clean_id(msg.get("Message-ID")))
    if _is_auto_reply(msg):
        report.kind = Kind.AUTO_REPLY
        return report
    if unsubscribe_address and unsubscribe_address.lower() in recipients and not _is_report(msg):
        report.kind = Kind.UNSUBSCRIBE
        report.sender = parseaddr(str(msg.get("From", "")))[1].lower() or None
        return report
    report_type = str(msg.get_param("report-type", header="Content-Type") if _is_report(msg) else "").lower()
    report.original_message_id = _original_message_id(msg)
    if report_type == "feedback-report":
        _read_arf(msg, report)
    elif report_type == "delivery-status":
        _read_dsn(msg, report)
    if report.kind is Kind.UNKNOWN and report_type not in ("delivery-status", "feedback-report"):
        # A standard report that says nothing failed (Action: delayed, delivered) is a warning: it
        # must not reach the heuristics, which count delayed recipients as temporary failures.
        _read_heuristically(msg, report)
    return report


def _delivered_to(msg: Message) -> list[str]:
    """Where the message was delivered, from the headers an MTA adds (or To when it added none)."""
    for header in ("Delivered-To", "X-Original-To", "Envelope-To", "To"):
        values = msg.get_all(header) or []
        found = [addr.lower() for _, addr in getaddresses([str(v) for v in values]) if addr]
        if found:
            return found
    return []


def _clean_id(value: object) -> str | None:
    """A Message-ID without its angle brackets and spaces."""
    text = str(value or "").strip().strip("<>").strip()
    return text[:250] or None


def _is_auto_reply(msg: Message) -> bool:
    """An out-of-office or other automatic answer (RFC 3834 and the common non-standard markers)."""
    if _is_report(msg) or _DAEMON.match(parseaddr(str(msg.get("From", "")))[1]):
        return False  # DSNs say "auto-replied" too (RFC 3834), and so do MTAs' non-standard bounces
    auto = str(msg.get("Auto-Submitted", "")).strip().lower()
    if auto.startswith("auto-replied"):
        return True
    if any(msg.get(h) for h in ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress-Replies")):
        return True
    if str(msg.get("Precedence", "")).strip().lower() == "auto_reply":
        return True
    return bool(_OUT_OF_OFFICE.match(str(msg.get("Subject", ""))))


def _is_report(msg: Message) -> bool:
    """A machine report (DSN or ARF), never an auto-reply or a person writing."""
    return msg.get_content_type() == "multipart/report"


def _parts(msg: Message, content_type: str) -> Iterable[Message]:
    """The parts of ``msg`` of one content type."""
    return (part for part in msg.walk() if part.get_content_type() == content_type)


def _field_blocks(part: Message) -> list[Message]:
    """The header blocks of a message/delivery-status or message/feedback-report part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    # Some writers put the fields in as text: parse them as header blocks separated by blank lines.
    text = payload if isinstance(payload, str) else ""
    return [email.message_from_string(block + "\n") for block in re.split(r"\r?\n\s*\r?\n", text) if block.strip()]


def _original_message_id(msg: Message) -> str | None:
    """The Message-ID of the message the report quotes (its message/rfc822 or text/rfc822-headers part)."""
    for part in msg.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            inner = part.get_payload()
            quoted = inner[0] if isinstance(inner, list) and inner else None
            if isinstance(quoted, Message) and quoted.get("Message-ID"):
                return _clean_id(quoted.get("Message-ID"))
        elif kind == "text/rfc822-headers":
            headers = email.message_from_string(str(part.get_payload(decode=True) or b"", "utf-8", "replace") + "\n")
            if headers.get("Message-ID"):
                return _clean_id(headers.get("Message-ID"))
    return None


def _read_dsn(msg: Message, report: Report) -> None:
    """Per-recipient fields of a DSN: the worst failure wins (one of ours has one recipient)."""
    for part in _parts(msg, "message/delivery-status"):
        for block in _field_blocks(part)[1:] or _field_blocks(part):
            action = str(block.get("Action", "")).strip().lower()
            status = _STATUS.search(str(block.get("Status", "")))
            recipient = _address_field(block.get("Original-Recipient")) or _address_field(block.get("Final-Recipient"))
            if action != "failed" or status is None:
                continue  # delayed, delivered, relayed, expanded: nothing failed (yet)
            kind = Kind.HARD if status.group(1) == "5" else Kind.SOFT
            if report.kind is not Kind.HARD:
                report.kind = kind
                report.status = status.group(0)
                report.diagnostic = _one_line(block.get("Diagnostic-Code")) or None
            if recipient:
                report.recipients.append(recipient)


def _read_arf(msg: Message, report: Report) -> None:
    """An abuse report: the complaining recipient is in Original-Rcpt-To, or the quoted message's To."""
    report.kind = Kind.COMPLAINT
    for part in _parts(msg, "message/feedback-report"):
        for block in _field_blocks(part):
            feedback = str(block.get("Feedback-Type", "abuse")).strip().lower()
            report.diagnostic = f"feedback-type {feedback}"
            for value in block.get_all("Original-Rcpt-To") or []:
                if address := _address_field(value):
                    report.recipients.append(address)
    if not report.recipients:
        for part in _parts(msg, "message/rfc822"):
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                report.recipients += [a.lower() for _, a in getaddresses([str(inner[0].get("To", ""))]) if a]


def _read_heuristically(msg: Message, report: Report) -> None:
    """Non-standard bounces, through flufl.bounce (Mailman's detectors); status and original from the text."""
    try:
        temporary, permanent = all_failures(msg)
    except Exception:  # noqa: BLE001 - a detector choking on odd input must not lose the message
        return
    if permanent or temporary:
        report.kind = Kind.HARD if permanent else Kind.SOFT
        report.recipients = sorted(a.decode("ascii", "replace").lower() for a in (permanent or temporary))
        report.diagnostic = _one_line(msg.get("Subject")) or None
        text = _body_text(msg)
        # Exim and friends write the SMTP error in words, and quote the original after their own text.
        if status := _STATUS.search(text):
            report.status = status.group(0)
        if report.original_message_id is None and (quoted := _QUOTED_ID.search(text)):
            report.original_message_id = _clean_id(quoted.group(1))


def _body_text(msg: Message) -> str:
    """The text of every text/plain part (or a non-MIME body), decoded leniently."""
    parts = [p for p in msg.walk() if p.get_content_type() == "text/plain"] or [msg]
    chunks = []
    for part in parts:
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            chunks.append(payload.decode(part.get_content_charset() or "utf-8", "replace"))
    return "\n".join(chunks)


def _address_field(value: object) -> str | None:
    """The address of an RFC 3464 recipient field (``rfc822; ann@example.org``)."""
    if not value:
        return None
    text = str(value)
    kind, _, address = text.partition(";")
    address = (address if _ else kind).strip().strip("<>").lower()
    return address if "@" in address else None


def _one_line(value: object) -> str:
    """A header value on one line, at most 1,000 characters."""
    return " ".join(str(value or "").split())[:1000]
