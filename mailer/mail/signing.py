"""DKIM signing (RFC 6376: rsa-sha256, relaxed/relaxed) with the ``cryptography`` package's RSA.

``DKIMSigner`` is made once per variant: it loads the key once (shared by PEM), canonicalises
the header lines and body pieces that every message of the variant shares, and keeps the
body hash fed with the leading fixed piece. Per message it canonicalises only the recipient's
own pieces, finishes the hashes and signs. dkimpy stays in the tests, as the verifier.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

#: (selector, domain, private key PEM), as ``MessageFactory(dkim=...)`` takes it.
DKIMKey = tuple[bytes, bytes, bytes]

#: Header fields the signature covers when present. Each is listed twice (over-signed), so a
#: copy of a field added in transit breaks the signature instead of slipping in unsigned.
#: Every list header that sends a reader somewhere (archive, help, subscribe) is covered, and
#: Feedback-ID, which Gmail trusts only when signed. Precedence and Auto-Submitted are not: they
#: steer how software handles the message, not where it is from, and hops may add their own.
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
    b"list-archive",
    b"archived-at",
    b"list-help",
    b"list-subscribe",
    b"list-post",
    b"feedback-id",
    b"mime-version",
    b"content-type",
)

#: Fold the DKIM-Signature field at this many octets a line (RFC 5322's recommended 78).
FOLD_WIDTH = 78

CRLF = b"\r\n"
_WSP_RUN = re.compile(rb"[ \t]{2,}|\t")  # a lone SP is left as it is
_WSP_AT_LINE_END = re.compile(rb"[ \t]+\r\n")
_FIELD_END = re.compile(rb"\r\n(?![ \t])")

#: A header field as (lowercase name, relaxed-canonical ``name:value`` CRLF).
Field = tuple[bytes, bytes]


def dkim_from_config(config: Mapping[str, object]) -> DKIMKey | None:
    """The DKIM key from DKIM_SELECTOR, DKIM_DOMAIN and DKIM_KEY (loaded by config.py), or None."""
    selector, domain, key = (config.get(name) for name in ("DKIM_SELECTOR", "DKIM_DOMAIN", "DKIM_KEY"))
    if not (selector and domain and key):
        return None
    return str(selector).encode("ascii"), str(domain).encode("ascii"), bytes(key)  # type: ignore[arg-type]


@lru_cache(maxsize=16)
def load_private_key(pem: bytes) -> rsa.RSAPrivateKey:
    """The RSA private key in ``pem``, parsed once per distinct PEM; ValueError for other key types."""
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the DKIM key must be an RSA private key (a=rsa-sha256)")
    return key


def header_fields(block: bytes) -> list[Field]:
    """The fields of a CRLF-terminated header block, relaxed-canonicalised (RFC 6376 §3.4.2)."""
    fields = []
    for field in _FIELD_END.split(block):
        if field:
            name, _, value = field.partition(b":")
            name = name.rstrip(b" \t").lower()
            fields.append((name, name + b":" + _relaxed_value(value) + CRLF))
    return fields


def _relaxed_value(value: bytes) -> bytes:
    """A header value unfolded, with WSP runs as one SP and no WSP at either end."""
    return _WSP_RUN.sub(b" ", value.replace(CRLF, b"")).strip(b" \t")


def relaxed_lines(data: bytes) -> bytes:
    """Body lines relaxed-canonicalised (RFC 6376 §3.4.4 a, b): no WSP at line ends, WSP runs as one SP."""
    # QP-encoded text seldom needs either rule; a substring test is far cheaper than a regex scan.
    if b" \r\n" in data or b"\t\r\n" in data:
        data = _WSP_AT_LINE_END.sub(CRLF, data)
    if b"\t" in data or b"  " in data:
        data = _WSP_RUN.sub(b" ", data)
    return data


def relaxed_body(body: bytes) -> bytes:
    """A whole body relaxed-canonicalised: its lines, then no empty lines at the end; empty stays empty."""
    if body and not body.endswith(CRLF):
        body += CRLF  # the unterminated last line is a line too: its trailing WSP goes
    body = relaxed_lines(body)
    end = len(body)
    while end >= 2 and body[end - 2 : end] == CRLF:
        end -= 2
    return body[:end] + CRLF if end else b""


class BodyHash:
    """SHA-256 of the relaxed body ``fixed[0] + values[0] + fixed[1] + ... + values[n-1] + fixed[n]``.

    The fixed pieces are canonicalised once and the hash is fed the first of them once. That is
    exact when every piece but the last begins a line and ends with CRLF (or is empty), so no line
    spans two pieces, and the last piece keeps a non-empty line (trailing empty lines stay in it).
    Otherwise the whole body is canonicalised per message: slower, never wrong.
    """

    def __init__(self, fixed: Sequence[bytes]) -> None:
        if not fixed:
            raise ValueError("a body has at least one fixed piece")
        self._fixed = list(fixed)
        *inner, last = self._fixed
        tail = relaxed_body(last)
        self._aligned = bool(tail) and all(_ends_lines(piece) for piece in inner)
        self._canonical = [relaxed_lines(piece) for piece in inner] + [tail]
        self._prefix = hashlib.sha256(self._canonical[0])

    def digest(self, values: Sequence[bytes]) -> bytes:
        """The body hash for one message, given the pieces between the fixed ones."""
        if len(values) != len(self._fixed) - 1:
            raise ValueError(f"the body needs {len(self._fixed) - 1} values, got {len(values)}")
        if not (self._aligned and all(_ends_lines(value) for value in values)):
            return hashlib.sha256(relaxed_body(b"".join(_interleaved(self._fixed, values)))).digest()
        body = self._prefix.copy()
        for value, piece in zip(values, self._canonical[1:], strict=True):
            body.update(relaxed_lines(value))
            body.update(piece)
        return body.digest()


def _ends_lines(piece: bytes) -> bool:
    """True when ``piece`` is empty or ends with CRLF, so what follows it starts a line."""
    return not piece or piece.endswith(CRLF)


def _interleaved(fixed: Sequence[bytes], values: Sequence[bytes]) -> Iterable[bytes]:
    """``fixed[0], values[0], fixed[1], ..., fixed[n]``."""
    yield fixed[0]
    for value, piece in zip(values, fixed[1:], strict=True):
        yield value
        yield piece


class DKIMSigner:
    """DKIM-Signature fields for the messages of one variant, signed with one key.

    ``fixed_head`` lists header chunks (one or more CRLF-terminated fields each) that many
    messages share, and ``fixed_body`` the body's fixed pieces (see ``BodyHash``); both are
    canonicalised here once.
    """

    def __init__(self, key: DKIMKey, *, fixed_head: Iterable[bytes] = (), fixed_body: Sequence[bytes] = (b"",)) -> None:
        selector, domain, pem = key
        self._key = load_private_key(pem)
        self._tags = [b"v=1;", b"a=rsa-sha256;", b"c=relaxed/relaxed;", b"d=" + domain + b";", b"s=" + selector + b";"]
        self._fixed_fields = {chunk: header_fields(chunk) for chunk in fixed_head}
        self._folded_tags: dict[tuple[bytes, ...], tuple[bytes, int]] = {}
        self._body = BodyHash(fixed_body)

    def signature(self, head: Sequence[bytes], values: Sequence[bytes] = ()) -> bytes:
        """The CRLF-terminated DKIM-Signature field for the message ``b"".join(head) + CRLF + body``.

        ``head`` is the header as chunks; ``values`` are the body pieces between the fixed ones.
        """
        fields: list[Field] = []
        for chunk in head:
            known = self._fixed_fields.get(chunk)
            fields += header_fields(chunk) if known is None else known
        return self._sign(fields, self._body.digest(values))

    def _sign(self, fields: Sequence[Field], body_hash: bytes) -> bytes:
        """The signature field over ``fields`` (in message order) and the body hash."""
        present = {name for name, _ in fields}
        names = tuple(name for name in SIGNED_HEADERS if name in present) * 2
        start, column = self._tags_through_h(names)
        timestamp, bh = b"t=%d;" % int(time.time()), b"bh=" + base64.b64encode(body_hash) + b";"
        rest, column = _folded([(b" ", timestamp), (b" ", bh), (b" ", b"b=")], column)
        tags = start + rest
        signed = b"".join(_selected(fields, names)) + b"dkim-signature:" + _relaxed_value(tags)
        value = base64.b64encode(self._key.sign(signed, padding.PKCS1v15(), hashes.SHA256()))
        return b"DKIM-Signature:" + tags + _folded_value(value, column) + CRLF

    def _tags_through_h(self, names: tuple[bytes, ...]) -> tuple[bytes, int]:
        """The tags v= to h= folded, and the column they end at; kept per h= list (a variant has few)."""
        folded = self._folded_tags.get(names)
        if folded is None:
            heads = [name + b":" for name in names[:-1]] + [names[-1] + b";"] if names else [b";"]
            pieces = [(b" ", tag) for tag in self._tags] + [(b" ", b"h=" + heads[0])]
            pieces += [(b"", name) for name in heads[1:]]
            folded = self._folded_tags[names] = _folded(pieces, len(b"DKIM-Signature:"))
        return folded


def _selected(fields: Sequence[Field], names: Sequence[bytes]) -> list[bytes]:
    """The canonical fields that ``h=names`` signs: a repeated name takes the next instance up."""
    instances: dict[bytes, list[bytes]] = {}
    for name, line in fields:
        instances.setdefault(name, []).append(line)
    return [instances[name].pop() for name in names if instances.get(name)]


def _folded(pieces: Iterable[tuple[bytes, bytes]], column: int) -> tuple[bytes, int]:
    """The pieces joined, with CRLF SP before any piece that would pass FOLD_WIDTH; and the end column."""
    out = []
    for separator, text in pieces:
        if column > 1 and column + len(separator) + len(text) > FOLD_WIDTH:
            out.append(b"\r\n ")
            column = 1
        else:
            out.append(separator)
            column += len(separator)
        out.append(text)
        column += len(text)
    return b"".join(out), column


def _folded_value(value: bytes, column: int) -> bytes:
    """The base64 ``b=`` value: the rest of the current line, then lines of FOLD_WIDTH with CRLF SP."""
    first = max(FOLD_WIDTH - column, 0)
    rest = [value[start : start + FOLD_WIDTH - 1] for start in range(first, len(value), FOLD_WIDTH - 1)]
    return b"".join([value[:first], *(b"\r\n " + line for line in rest)])


def sign(message: bytes, key: DKIMKey) -> bytes:
    """The ``DKIM-Signature`` header field (CRLF-terminated) to put in front of ``message``."""
    head, _, body = message.partition(CRLF + CRLF)
    return DKIMSigner(key, fixed_body=[body]).signature([head + CRLF])
