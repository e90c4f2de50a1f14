"""Build RFC 5322 messages for many recipients from one rendered variant.

``MessageFactory`` splits the text and HTML parts at their personal placeholders and
quoted-printable encodes every piece once. ``build`` encodes only the recipient's few values
(their links) and headers and joins pre-encoded bytes: no ``EmailMessage`` per recipient.
A soft line break (``=`` CRLF) closes each piece, so an inserted value starts on a fresh
encoded line and no line grows past 76 octets, whatever the value's length.
With ``dkim``, the factory's ``DKIMSigner`` has the fixed headers and body pieces canonicalised
and hashed once, and signs each message over the recipient's own pieces only.

The envelope sender (Return-Path) is not part of the message: callers pass BOUNCE_ADDRESS
as ``envelope_from`` to ``SMTPTransport.send``.
"""

from __future__ import annotations

import binascii
import html
import re
import secrets
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email import policy
from email.header import Header
from email.utils import format_datetime

from .render import PLACEHOLDER, RenderedEmail
from .signing import DKIMSigner

#: RFC 2045: encoded lines are at most 76 characters; RFC 5322: any line at most 998.
QP_LINE = 76
MAX_LINE = 998

_ATOM_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]*")
_ADDR_SPEC = re.compile(r"[^\s@<>()\[\]\\,;:\"]+@[^\s@<>()\[\]\\,;:\"]+")
_MAILBOX = re.compile(r"\s*(?:(?P<name>[^<>]*?)\s*<(?P<angle>[^<>]*)>|(?P<bare>[^<>]*?))\s*")
_URI_LIST = re.compile(r"(?<=>)\s*,\s*")
_MESSAGE_ID = re.compile(r"<[!-;=?-~]+@[!-;=?-~]+>")
_ONE_CLICK = b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"


def make_message_id(domain: str) -> str:
    """A globally unique Message-ID in our own domain."""
    return f"<{int(time.time() * 1000)}.{secrets.token_hex(10)}@{_ascii_domain(domain)}>"


def single_line(field: str, value: str) -> str:
    """``value`` unchanged; ValueError when it holds CR, LF or NUL (header injection)."""
    if "\r" in value or "\n" in value or "\0" in value:
        raise ValueError(f"{field} must be a single line")
    return value


def _ascii_domain(domain: str) -> str:
    """The domain in its ASCII (IDNA) form."""
    try:
        return domain.encode("idna").decode("ascii") if not domain.isascii() else domain
    except UnicodeError:
        raise ValueError(f"not a valid domain: {domain!r}") from None


def ascii_address(field: str, addr: str) -> str:
    """The addr-spec with its domain in IDNA form; ValueError if it is malformed or needs SMTPUTF8."""
    local, _, domain = single_line(field, addr).rpartition("@")
    if not local.isascii():
        raise ValueError(f"{field}: a non-ASCII local part needs SMTPUTF8, which mailer does not use: {addr!r}")
    addr = f"{local}@{_ascii_domain(domain)}"
    if not _ADDR_SPEC.fullmatch(addr):
        raise ValueError(f"{field} is not a valid address: {addr!r}")
    return addr


def parse_mailbox(field: str, value: str) -> tuple[str, str]:
    """``Name <addr>`` or ``addr`` as (name, ASCII addr); ValueError unless it is exactly one mailbox."""
    match = _MAILBOX.fullmatch(single_line(field, value))
    if match is None:
        raise ValueError(f"{field} must be exactly one address: {value!r}")
    name = match["name"] or ""
    if len(name) > 1 and name[0] == name[-1] == '"':
        name = re.sub(r"\\(.)", r"\1", name[1:-1])
    return name, ascii_address(field, match["bare"] if match["angle"] is None else match["angle"])


def format_mailbox(field: str, name: str, addr: str) -> str:
    """A mailbox for a header: ASCII names quoted when needed, others RFC 2047 encoded and folded."""
    if not name:
        return addr
    if not name.isascii():
        return Header(name, "utf-8", header_name=field).encode(linesep="\r\n") + f" <{addr}>"
    if not _ATOM_NAME.fullmatch(name):
        name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{name} <{addr}>"


def header_line(field: str, value: str) -> bytes:
    """One header field as CRLF-terminated ASCII; ValueError if any line would pass 998 octets."""
    line = f"{field}: {value}\r\n".encode("ascii")
    if any(len(part) > MAX_LINE for part in line.split(b"\r\n")):
        raise ValueError(f"{field} is too long for one header line")
    return line


def _folded(field: str, value: str) -> bytes:
    """An unstructured header (Subject, List-Id) RFC 2047 encoded when non-ASCII, folded at 78."""
    header = policy.SMTP.header_factory(field, single_line(field, value))
    return header.fold(policy=policy.SMTP).encode("ascii")


def _list_id(list_id: str | None, sender_addr: str) -> str:
    """List-Id as given (``<label.domain>`` added when bare), or derived from the sender."""
    if list_id is None:
        local, _, domain = sender_addr.partition("@")
        return f"<{local}.{domain}>"
    list_id = single_line("list_id", list_id).strip()
    return list_id if list_id.endswith(">") else f"<{list_id}>"


def _qp(content: str) -> bytes:
    """Quoted-printable encoding of ``content`` (LF line breaks in), CRLF line breaks out."""
    return binascii.b2a_qp(content.encode("utf-8"), istext=True).replace(b"\n", b"\r\n")


def _closed(encoded: bytes) -> bytes:
    """``encoded`` ending at a line boundary: a soft break added unless it ends with CRLF."""
    if not encoded or encoded.endswith(b"\r\n"):
        return encoded
    head, newline, last = encoded.rpartition(b"\r\n")
    cut = QP_LINE - 1
    if len(last) > cut:
        # Split the overlong last line, never inside an "=XX" escape.
        cut -= 1 if last[cut - 1 : cut] == b"=" else 2 if last[cut - 2 : cut - 1] == b"=" else 0
        last = last[:cut] + b"=\r\n" + last[cut:]
    return head + newline + last + b"=\r\n"


def _normalised(content: str) -> str:
    """``content`` with every line break as LF (CRLF is restored after encoding)."""
    return content.replace("\r\n", "\n").replace("\r", "\n")


class _EncodedPart:
    """One body part, QP-encoded once as pieces between its personal placeholders."""

    def __init__(self, content: str, escape: Callable[[str], str]) -> None:
        pieces = PLACEHOLDER.split(_normalised(content))
        literals = pieces[0::2]
        self.names: list[str] = pieces[1::2]
        self.literals = [_closed(_qp(piece)) for piece in literals[:-1]] + [_qp(literals[-1])]
        self.escape = escape

    def values(self, personal: Mapping[str, str]) -> list[bytes]:
        """One recipient's encoded values, each to go between two literals."""
        try:
            return [_closed(_qp(self.escape(_normalised(personal[name])))) for name in self.names]
        except KeyError as missing:
            raise ValueError(f"the message needs personal[{missing.args[0]!r}]") from None


def _html_escape(value: str) -> str:
    """Escape a value for the HTML part, the way Jinja's autoescape would have."""
    return html.escape(value, quote=True)


def _identity(value: str) -> str:
    """The value as is (the text part needs no escaping)."""
    return value


class MessageFactory:
    """Prepared once per variant; ``build`` fills in one recipient's headers and links.

    Caller-given header values (subject, sender, to, ...) with CR or LF raise ValueError.
    """

    def __init__(
        self,
        rendered: RenderedEmail,
        *,
        subject: str,
        sender: str,
        list_id: str | None = None,
        reply_to: str | None = None,
        dkim: tuple[bytes, bytes, bytes] | None = None,
    ) -> None:
        name, self.sender_address = parse_mailbox("sender", sender)
        self.domain = self.sender_address.rpartition("@")[2]
        self.dkim = dkim
        self._from = header_line("From", format_mailbox("From", name, self.sender_address))
        self._subject = _folded("Subject", subject)
        self._lists = _folded("List-Id", _list_id(list_id, self.sender_address))
        if reply_to is not None:
            self._lists += header_line("Reply-To", format_mailbox("Reply-To", *parse_mailbox("reply_to", reply_to)))
        boundary = "=_mailer_" + secrets.token_hex(8)  # "=_" never occurs in QP-encoded text
        self._mime = header_line("MIME-Version", "1.0") + header_line(
            "Content-Type", f'multipart/alternative; boundary="{boundary}"'
        )
        part = 'Content-Type: text/{}; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'
        self._text = _EncodedPart(rendered.text, _identity)
        self._html = _EncodedPart(rendered.html, _html_escape)
        # The body's fixed pieces: each recipient's values go between them, in order.
        self._body = [f"--{boundary}\r\n{part.format('plain')}".encode("ascii") + self._text.literals[0]]
        self._body += self._text.literals[1:]
        self._body[-1] += f"\r\n--{boundary}\r\n{part.format('html')}".encode("ascii") + self._html.literals[0]
        self._body += self._html.literals[1:]
        self._body[-1] += f"\r\n--{boundary}--\r\n".encode("ascii")
        self._signer: DKIMSigner | None = None
        if dkim is not None:
            fixed_head = (self._from, self._subject, self._lists, _ONE_CLICK, self._mime)
            self._signer = DKIMSigner(dkim, fixed_head=fixed_head, fixed_body=self._body)
        self._date_second = -1
        self._date = b""

    def _date_line(self) -> bytes:
        """The Date header, formatted at most once a second."""
        now = int(time.time())
        if now != self._date_second:
            self._date_second, self._date = now, header_line("Date", format_datetime(datetime.fromtimestamp(now, UTC)))
        return self._date

    def build(
        self,
        *,
        to: str,
        message_id: str,
        personal: Mapping[str, str] | None = None,
        list_unsubscribe: str | None = None,
        one_click: bool = True,
    ) -> bytes:
        """Return the bytes of the message for one recipient (``to``: ``addr`` or ``Name <addr>``)."""
        if not _MESSAGE_ID.fullmatch(single_line("message_id", message_id)):
            raise ValueError(f"message_id must look like <id@domain>: {message_id!r}")
        personal = personal or {}
        head = [
            self._from,
            header_line("To", format_mailbox("To", *parse_mailbox("to", to))),
            self._subject,
            self._date_line(),
            header_line("Message-ID", message_id),
            self._lists,
        ]
        if list_unsubscribe:
            head.append(header_line("List-Unsubscribe", _list_unsubscribe(list_unsubscribe)))
            if one_click:
                head.append(_ONE_CLICK)
        head.append(self._mime)
        values = self._text.values(personal) + self._html.values(personal)
        body = [self._body[0]]
        for value, piece in zip(values, self._body[1:], strict=True):
            body += (value, piece)
        message = b"".join([*head, b"\r\n", *body])
        if self._signer is not None:
            message = self._signer.signature(head, values) + message
        return message


def _list_unsubscribe(value: str) -> str:
    """List-Unsubscribe checked (one line, ASCII) and folded between its ``<URI>`` entries."""
    value = single_line("list_unsubscribe", value)
    if not value.isascii():
        raise ValueError("list_unsubscribe must be ASCII (percent-encode the URIs)")
    return ",\r\n ".join(_URI_LIST.split(value.strip()))
