"""DKIM signatures from DKIMSigner, checked by dkimpy's verifier and against whole-body canonicalisation."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from dkim.canonicalization import Relaxed
from hypothesis import given, settings
from hypothesis import strategies as st

from mailer.mail import MessageFactory, RenderedEmail, make_message_id, personal_placeholder, signing
from mailer.mail.signing import BodyHash, DKIMKey, header_fields, load_private_key, relaxed_body, sign
from tests.data import dkim_key

LINK = personal_placeholder("link")
OTHER = personal_placeholder("other")
TEXT = f"Hello,\n\nYour link:   {LINK}  \n\t\nAnd\t\tanother one: {OTHER}\n  \n\n"
HTML = f'<p>Hello,</p>  \n<p><a href="{LINK}">link</a>\t<a href="{OTHER}"> other </a></p>\n'

#: Per-recipient values that test the seams between fixed and per-recipient body pieces.
HOSTILE = [
    "",
    " ",
    "\t",
    "  leading",
    "trailing  ",
    "inner \t \t runs",
    " \t ",
    "x" * 300 + "  ",
    "é 日本 😀  ",
    "two\n  lines  \n",
    "=20 = ",
    "crlf\r\n\tinside\r\n",
]


@pytest.fixture(scope="module", params=[1024, 2048], ids=["rsa1024", "rsa2048"])
def key(request: pytest.FixtureRequest) -> tuple[DKIMKey, Callable[..., bytes]]:
    """An RSA key as MessageFactory takes it, and a dkimpy DNS lookup publishing its public half."""
    pair = dkim_key(request.param)
    return (b"mailer", b"example.org", pair.pem), pair.dns(b"mailer", b"example.org")


def factory(signing_key: DKIMKey, **options: object) -> MessageFactory:
    """A signing factory for a variant whose literals end and start with whitespace."""
    options = {"subject": "Digest", "sender": "News <news@example.org>", "reply_to": "help@example.org", **options}
    text, html = options.pop("text", TEXT), options.pop("html", HTML)
    return MessageFactory(RenderedEmail(text=text, html=html), dkim=signing_key, **options)  # type: ignore[arg-type]


def build(maker: MessageFactory, link: str = "https://example.org/u/1", **options: object) -> bytes:
    """One recipient's signed message."""
    defaults: dict[str, object] = {
        "to": "Ann <ann@example.com>",
        "message_id": make_message_id("example.org"),
        "personal": {"link": link, "other": "https://example.org/o/1"},
        "list_unsubscribe": "<https://example.org/u/1>, <mailto:unsubscribe@example.org>",
    }
    return maker.build(**{**defaults, **options})  # type: ignore[arg-type]


def tag(data: bytes, name: str) -> str:
    """A tag's value from the message's DKIM-Signature field, unfolded."""
    field = re.match(rb"DKIM-Signature:(.*?)\r\n(?![ \t])", data, re.S)
    assert field is not None, "the DKIM-Signature field comes first"
    value = re.search(rf"(?:^|;)\s*{name}=([^;]*)", field.group(1).decode())
    assert value is not None
    return re.sub(r"\s+", "", value.group(1))


def test_plain_ascii_message_verifies(key: tuple[DKIMKey, Callable[..., bytes]]) -> None:
    """An all-ASCII message verifies, with the tags RFC 6376 asks for."""
    signing_key, dnsfunc = key
    data = build(factory(signing_key, text=f"Plain text {LINK}\n", html=f"<p>{LINK}</p>"))
    assert dkim.verify(data, dnsfunc=dnsfunc)
    assert (tag(data, "v"), tag(data, "a"), tag(data, "c")) == ("1", "rsa-sha256", "relaxed/relaxed")
    assert (tag(data, "d"), tag(data, "s")) == ("example.org", "mailer")
    assert int(tag(data, "t")) > 0


def test_signature_field_is_folded(key: tuple[DKIMKey, Callable[..., bytes]]) -> None:
    """Every line of the DKIM-Signature field stays within 78 octets; continuation lines start with SP."""
    signing_key, _ = key
    data = build(factory(signing_key))
    field = re.match(rb"DKIM-Signature:.*?\r\n(?![ \t])", data, re.S)
    assert field is not None
    lines = field.group(0).split(b"\r\n")[:-1]
    assert len(lines) > 1
    assert max(len(line) for line in lines) <= 78
    assert all(line.startswith(b" ") for line in lines[1:])


def test_non_ascii_folded_subject_verifies(key: tuple[DKIMKey, Callable[..., bytes]]) -> None:
    """An RFC 2047 Subject folded over several lines verifies."""
    signing_key, dnsfunc = key
    data = build(factory(signing_key, subject="Digest: é 日本 😀 " * 8, sender="Jörg Müller · News <news@example.org>"))
    head = data.partition(b"\r\n\r\n")[0]
    assert re.search(rb"\r\nSubject: [^\r]*\r\n [^\r]*\r\n ", head), "the Subject is folded"
    assert dkim.verify(data, dnsfunc=dnsfunc)


@pytest.mark.parametrize("reply_to", ["help@example.org", None])
@pytest.mark.parametrize("list_unsubscribe", ["<https://example.org/u/1>", None])
@pytest.mark.parametrize("one_click", [True, False])
def test_optional_headers_are_signed_when_present(
    key: tuple[DKIMKey, Callable[..., bytes]], reply_to: str | None, list_unsubscribe: str | None, one_click: bool
) -> None:
    """h= names exactly the present headers, each twice; the message verifies either way."""
    signing_key, dnsfunc = key
    data = build(factory(signing_key, reply_to=reply_to), list_unsubscribe=list_unsubscribe, one_click=one_click)
    assert dkim.verify(data, dnsfunc=dnsfunc)
    present = ["from", "to", "subject", "date", "message-id", "list-id", "mime-version", "content-type"]
    present += ["reply-to"] * bool(reply_to) + ["list-unsubscribe"] * bool(list_unsubscribe)
    present += ["list-unsubscribe-post"] * bool(list_unsubscribe and one_click)
    names = tag(data, "h").split(":")
    assert sorted(names) == sorted(present * 2)
    assert names[: len(names) // 2] == names[len(names) // 2 :]


@pytest.mark.parametrize("value", HOSTILE, ids=repr)
def test_hostile_personal_values_verify(key: tuple[DKIMKey, Callable[..., bytes]], value: str) -> None:
    """Whitespace at the seams, long and empty values: bh= equals the whole body's hash; dkimpy agrees."""
    signing_key, dnsfunc = key
    data = build(factory(signing_key), link=value)
    body = data.partition(b"\r\n\r\n")[2]
    whole = base64.b64encode(hashlib.sha256(relaxed_body(body)).digest()).decode()
    assert tag(data, "bh") == whole
    assert base64.b64encode(hashlib.sha256(Relaxed.canonicalize_body(body)).digest()).decode() == whole
    assert dkim.verify(data, dnsfunc=dnsfunc)


def test_each_message_of_a_factory_verifies(key: tuple[DKIMKey, Callable[..., bytes]]) -> None:
    """The shared body-hash prefix is copied, not consumed: every message of a factory verifies."""
    signing_key, dnsfunc = key
    maker = factory(signing_key)
    messages = [build(maker, link=value, to=f"r{n} <r{n}@example.com>") for n, value in enumerate(HOSTILE)]
    assert all(dkim.verify(data, dnsfunc=dnsfunc) for data in messages)


def test_body_is_not_canonicalised_whole_per_message(
    key: tuple[DKIMKey, Callable[..., bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The factory's pieces line up, so building a message canonicalises only the recipient's values."""
    signing_key, _ = key
    maker = factory(signing_key)
    calls: list[bytes] = []
    monkeypatch.setattr(signing, "relaxed_body", lambda body: calls.append(body) or relaxed_body(body))
    for value in HOSTILE:
        build(maker, link=value)
    assert calls == []


def test_tampered_body_fails(key: tuple[DKIMKey, Callable[..., bytes]]) -> None:
    """A changed character in the body breaks the signature."""
    signing_key, dnsfunc = key
    data = build(factory(signing_key))
    assert b"Your link:" in data
    assert not dkim.verify(data.replace(b"Your link:", b"Your lynk:", 1), dnsfunc=dnsfunc)


def test_tampered_signed_header_fails(key: tuple[DKIMKey, Callable[..., bytes]]) -> None:
    """A changed Subject or To breaks the signature."""
    signing_key, dnsfunc = key
    data = build(factory(signing_key))
    assert not dkim.verify(re.sub(rb"\r\nSubject: [^\r]*", b"\r\nSubject: You won", data, count=1), dnsfunc=dnsfunc)
    assert not dkim.verify(data.replace(b"ann@example.com", b"bob@example.com", 1), dnsfunc=dnsfunc)


def test_added_from_header_fails(key: tuple[DKIMKey, Callable[..., bytes]]) -> None:
    """Over-signing: a second From added in transit breaks the signature (above or below the first)."""
    signing_key, dnsfunc = key
    data = build(factory(signing_key))
    assert not dkim.verify(data.replace(b"\r\nFrom: ", b"\r\nFrom: evil@example.net\r\nFrom: ", 1), dnsfunc=dnsfunc)
    assert not dkim.verify(data.replace(b"\r\nTo: ", b"\r\nFrom: evil@example.net\r\nTo: ", 1), dnsfunc=dnsfunc)


def test_sign_whole_message(key: tuple[DKIMKey, Callable[..., bytes]]) -> None:
    """``sign`` signs any CRLF message in one piece, repeated fields included."""
    signing_key, dnsfunc = key
    message = (
        b"From: a@example.org\r\nTo:  b@example.com \r\nTo: c@example.com\r\nSubject: hi\r\n\tthere  \r\n"
        b"X-Unsigned: 1\r\n\r\nbody  line \t\r\n\r\n \r\n\r\n"
    )
    data = sign(message, signing_key) + message
    assert dkim.verify(data, dnsfunc=dnsfunc)
    assert tag(data, "h") == "from:to:subject:from:to:subject"
    assert not dkim.verify(data.replace(b"To: c@", b"To: d@"), dnsfunc=dnsfunc)


def test_rfc_6376_example() -> None:
    """The relaxed example of RFC 6376 section 3.4.5."""
    head = b"A: X\r\nB : Y\t\r\n\tZ  \r\n"
    body = b" C \r\nD \t E\r\n\r\n\r\n"
    assert [line for _, line in header_fields(head)] == [b"a:X\r\n", b"b:Y Z\r\n"]
    assert relaxed_body(body) == b" C\r\nD E\r\n"


@pytest.mark.parametrize(
    ("body", "canonical"),
    [
        (b"", b""),
        (b"\r\n", b""),
        (b" \r\n\t\r\n", b""),
        (b"a", b"a\r\n"),
        (b"a \t", b"a\r\n"),
        (b"a\r\n\r\n", b"a\r\n"),
    ],
)
def test_relaxed_body_ends(body: bytes, canonical: bytes) -> None:
    """No empty lines at the end, CRLF after the last line, an empty body stays empty (RFC 6376 §3.4.4)."""
    assert relaxed_body(body) == canonical


OCTETS = st.lists(st.sampled_from([b" ", b"\t", b"a", b"=", b"\xc3\xa9", b"\r", b"\n"]), max_size=6).map(b"".join)
#: Body pieces: mostly whole CRLF-terminated lines (as MessageFactory makes them), sometimes anything.
PIECE = st.one_of(
    st.lists(OCTETS, max_size=4).map(lambda lines: b"".join(line + b"\r\n" for line in lines)),
    st.lists(st.one_of(OCTETS, st.just(b"\r\n")), max_size=4).map(b"".join),
)


@settings(max_examples=300, deadline=None)
@given(fixed=st.lists(PIECE, min_size=1, max_size=5), values=st.data())
def test_body_hash_equals_whole_body_hash(fixed: list[bytes], values: st.DataObject) -> None:
    """Pieces hashed one by one (or, when they do not line up, joined) give the whole body's hash."""
    between = values.draw(st.lists(PIECE, min_size=len(fixed) - 1, max_size=len(fixed) - 1))
    whole = b"".join(part for pair in zip(fixed, [*between, b""], strict=True) for part in pair)
    assert BodyHash(fixed).digest(between) == hashlib.sha256(relaxed_body(whole)).digest()


@settings(max_examples=300, deadline=None)
@given(body=PIECE.map(lambda piece: piece + b"\r\n"))
def test_relaxed_body_matches_dkimpy(body: bytes) -> None:
    """For CRLF-terminated bodies (all SMTP can carry), our canonical body is dkimpy's."""
    assert relaxed_body(body) == Relaxed.canonicalize_body(body)


def test_keys_are_loaded_once_and_must_be_rsa(key: tuple[DKIMKey, Callable[..., bytes]]) -> None:
    """Factories with the same PEM share one loaded key; an Ed25519 key is refused."""
    pem = key[0][2]
    assert load_private_key(pem) is load_private_key(bytes(pem))
    other = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(ValueError, match="RSA"):
        load_private_key(other)
