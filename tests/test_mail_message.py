"""Messages built by MessageFactory, checked on their bytes with the standard email parser."""

from __future__ import annotations

import re
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import dkim
import pytest
from aiosmtpd.controller import Controller
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mailer.mail import (
    MessageFactory,
    RenderedEmail,
    SMTPSettings,
    SMTPTransport,
    dkim_from_config,
    make_message_id,
    render_email,
)
from mailer.mail import personal_placeholder as placeholder
from tests.conftest import CaughtMail
from tests.data import dkim_key

SENDER = "Jörg Müller · SMEWG News <news@example.org>"
UNSUBSCRIBE = placeholder("unsubscribe_url")
PREFERENCES = placeholder("preferences_url")
TEXT = f"Hello é 日本 😀\n\nNew meetings.\n\nPreferences: {PREFERENCES}\nUnsubscribe: {UNSUBSCRIBE}\n"
HTML = (
    '<html lang="en"><body><h1 style="color: #0b5cad">Digest é 日本 😀</h1>'
    f'<p><a href="{PREFERENCES}">Change your topics</a> · <a href="{UNSUBSCRIBE}">Unsubscribe</a></p>'
    "</body></html>"
)


def links(who: str) -> dict[str, str]:
    """Personal links for one recipient."""
    return {
        "unsubscribe_url": f"https://news.example.org/subscriptions/unsubscribe/{who}-token.abc_DEF",
        "preferences_url": f"https://news.example.org/subscriptions/manage/{who}-token.xyz",
    }


def factory(text: str = TEXT, html: str = HTML, **options: object) -> MessageFactory:
    """A factory for the test variant."""
    options = {"subject": "Digest: é 日本 😀", "sender": SENDER, "reply_to": "help@example.org", **options}
    return MessageFactory(RenderedEmail(text=text, html=html), **options)  # type: ignore[arg-type]


def build(maker: MessageFactory, who: str = "ann", **options: object) -> bytes:
    """One recipient's message."""
    defaults: dict[str, object] = {
        "to": f"Ann Ö <{who}@example.com>",
        "message_id": make_message_id(maker.domain),
        "personal": links(who),
        "list_unsubscribe": f"<{links(who)['unsubscribe_url']}>, <mailto:unsubscribe@example.org?subject=unsubscribe>",
    }
    return maker.build(**{**defaults, **options})  # type: ignore[arg-type]


def parse(data: bytes) -> EmailMessage:
    """The message as a mail client would read it."""
    return BytesParser(policy=policy.default).parsebytes(data)  # type: ignore[return-value]


def parts(message: EmailMessage) -> tuple[str, str]:
    """The decoded text and HTML parts (line breaks as LF)."""
    text, html = message.iter_parts()
    assert (text.get_content_type(), html.get_content_type()) == ("text/plain", "text/html")
    return tuple(p.get_content().replace("\r\n", "\n") for p in (text, html))  # type: ignore[return-value]


def test_multipart_alternative_with_all_headers() -> None:
    """Both parts in UTF-8 and every list header present and well-formed."""
    data = build(factory())
    message = parse(data)
    assert message.get_content_type() == "multipart/alternative"
    assert message.defects == []
    assert all(part.get_content_charset() == "utf-8" for part in message.iter_parts())
    assert all(not part.defects for part in message.iter_parts())
    assert message["From"].addresses[0].display_name == "Jörg Müller · SMEWG News"
    assert message["From"].addresses[0].addr_spec == "news@example.org"
    assert message["To"].addresses[0].display_name == "Ann Ö"
    assert message["To"].addresses[0].addr_spec == "ann@example.com"
    assert message["Reply-To"].addresses[0].addr_spec == "help@example.org"
    assert message["Subject"] == "Digest: é 日本 😀"
    assert message["Date"].datetime.tzinfo is not None
    assert re.fullmatch(r"<[^<>@\s]+@example\.org>", message["Message-ID"])
    assert message["MIME-Version"] == "1.0"
    assert message["List-Id"] == "<news.example.org>"
    assert message["List-Unsubscribe"] == (
        f"<{links('ann')['unsubscribe_url']}>, <mailto:unsubscribe@example.org?subject=unsubscribe>"
    )
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Precedence"] is None, "list mail only (ListMail)"
    head = data.partition(b"\r\n\r\n")[0]
    # non-ASCII headers are RFC 2047 encoded
    assert data.isascii()
    assert b"=?utf-8?" in head


def test_optional_headers() -> None:
    """List-Id as configured; no Reply-To, List-Unsubscribe or -Post unless asked for."""
    message = parse(build(factory(list_id="SMEWG News <news.example.org>", reply_to=None), list_unsubscribe=None))
    assert message["List-Id"] == "SMEWG News <news.example.org>"
    assert message["Reply-To"] is None
    assert message["List-Unsubscribe"] is None
    assert message["List-Unsubscribe-Post"] is None
    assert parse(build(factory(), one_click=False))["List-Unsubscribe-Post"] is None


def test_message_ids_unique_in_sender_domain() -> None:
    """Every message gets its own Message-ID in the sender's domain."""
    maker = factory()
    ids = [parse(build(maker, who=f"r{i}"))["Message-ID"] for i in range(50)]
    assert len(set(ids)) == 50
    assert all(i.endswith("@example.org>") for i in ids)


def test_personal_links_are_the_recipients() -> None:
    """A's links are in both of A's parts and in none of B's; no placeholder is left."""
    maker = factory()
    ann, bob = parts(parse(build(maker, "ann"))), parts(parse(build(maker, "bob")))
    for url in links("ann").values():
        assert all(url in part for part in ann)
        assert not any(url in part for part in bob)
    assert all("@@personal" not in part for part in ann + bob)
    assert f'href="{links("bob")["unsubscribe_url"]}"' in bob[1]


def test_non_ascii_content_round_trips() -> None:
    """é, 日本 and emoji come back unchanged from both parts."""
    text, html = parts(parse(build(factory())))
    assert text == TEXT.replace(UNSUBSCRIBE, links("ann")["unsubscribe_url"]).replace(
        PREFERENCES, links("ann")["preferences_url"]
    )
    assert "Digest é 日本 😀" in html


def test_long_lines_are_wrapped() -> None:
    """Encoded lines stay within 76 octets, header lines within 998, however long the content."""
    long_word = "x" * 3000
    maker = factory(text=f"{long_word}{UNSUBSCRIBE}{long_word}\n", html=f"<p>{'日本 ' * 2000}{UNSUBSCRIBE}</p>")
    data = build(maker, personal={"unsubscribe_url": "https://example.org/" + "u" * 300})
    head, _, body = data.partition(b"\r\n\r\n")
    assert max(len(line) for line in head.split(b"\r\n")) <= 998
    assert max(len(line) for line in body.split(b"\r\n")) <= 76
    text, html = parts(parse(data))
    assert text == f"{long_word}https://example.org/{'u' * 300}{long_word}\n"
    assert html.count("日本") == 2000


@pytest.mark.parametrize("column", range(60, 80))
def test_placeholder_at_a_soft_line_break_is_replaced(column: int) -> None:
    """Replacement happens before encoding, so a placeholder where QP would break a line still works."""
    text = "a" * column + UNSUBSCRIBE + " after\n"
    html = "<p>" + "é" * column + f'<a href="{UNSUBSCRIBE}">x</a></p>'
    got_text, got_html = parts(parse(build(factory(text=text, html=html), personal=links("ann"))))
    url = links("ann")["unsubscribe_url"]
    assert got_text == "a" * column + url + " after\n"
    assert got_html == "<p>" + "é" * column + f'<a href="{url}">x</a></p>'


@settings(max_examples=150, deadline=None)
@given(
    chunks=st.lists(st.text(st.characters(blacklist_categories=["Cs"]), max_size=120), min_size=1, max_size=4),
    value=st.text(st.characters(blacklist_categories=["Cs", "Cc"]), max_size=200),
)
@example(chunks=["a\r", "\nb"], value="")
@example(chunks=["x" * 75 + "é", " \n=", ""], value="=" * 80)
def test_any_content_decodes_to_what_was_rendered(chunks: list[str], value: str) -> None:
    """Whatever the text (spaces at line ends, '=', CR, long runs), decoding gives it back exactly."""
    text = UNSUBSCRIBE.join(chunks)
    data = build(factory(text=text, html="<p>x</p>"), personal={"unsubscribe_url": value})
    body = data.partition(b"\r\n\r\n")[2]
    assert max(len(line) for line in body.split(b"\r\n")) <= 76
    decoded = parse(data).get_payload(0).get_payload(decode=True).decode("utf-8")
    expected = value.join(chunk.replace("\r\n", "\n").replace("\r", "\n") for chunk in chunks)
    assert decoded.replace("\r\n", "\n") == expected


def test_personal_values_are_escaped_in_html_only() -> None:
    """A value is HTML-escaped in the HTML part (like autoescape) and left alone in the text part."""
    value = 'https://example.org/u?a=1&b="><script>'
    text, html = parts(parse(build(factory(), personal={**links("ann"), "unsubscribe_url": value})))
    assert f"Unsubscribe: {value}" in text
    assert 'href="https://example.org/u?a=1&amp;b=&quot;&gt;&lt;script&gt;"' in html
    assert "<script>" not in html


def test_missing_personal_value_is_an_error() -> None:
    """A template placeholder without a value is a clear error, never a literal placeholder sent out."""
    with pytest.raises(ValueError, match="preferences_url"):
        build(factory(), personal={"unsubscribe_url": "https://example.org/u"})


INJECTION = "x@example.org\r\nBcc: victim@example.net"


@pytest.mark.parametrize(
    "options",
    [
        {"subject": "Hello\r\nBcc: victim@example.net"},
        {"subject": "Hello\nX-Injected: 1"},
        {"sender": INJECTION},
        {"reply_to": INJECTION},
        {"list_id": "<news.example.org>\r\nBcc: victim@example.net"},
    ],
)
def test_header_injection_in_factory_is_refused(options: dict[str, str]) -> None:
    """CR or LF in any header value given to the factory raises ValueError."""
    with pytest.raises(ValueError, match="single line"):
        factory(**options)


@pytest.mark.parametrize(
    "options",
    [
        {"to": INJECTION},
        {"to": "Ann\r\n <ann@example.com>"},
        {"message_id": "<a@example.org>\r\nBcc: victim@example.net"},
        {"list_unsubscribe": "<https://example.org/u>\r\nBcc: victim@example.net"},
    ],
)
def test_header_injection_in_build_is_refused(options: dict[str, str]) -> None:
    """CR or LF in a per-recipient header value raises ValueError."""
    with pytest.raises(ValueError, match="single line"):
        build(factory(), **options)


@pytest.mark.parametrize(
    "to",
    ["", "not an address", "ann@example.com, bob@example.com", "用户@example.com", "<ann@exa mple.com>"],
)
def test_malformed_recipients_are_refused(to: str) -> None:
    """Anything but exactly one usable address raises ValueError."""
    with pytest.raises(ValueError):
        build(factory(), to=to)


def test_international_domain_is_sent_as_idna() -> None:
    """An address in an internationalised domain gets its ASCII form."""
    message = parse(build(factory(), to="Zoë <zoe@bücher.example>"))
    assert message["To"].addresses[0].addr_spec == "zoe@xn--bcher-kva.example"
    assert message["To"].addresses[0].display_name == "Zoë"


def test_rendered_base_template_builds() -> None:
    """The real base templates: CSS inlined, placeholders filled in both parts."""
    rendered = render_email("base", org_name="SMEWG News", org_postal_address="1 Example Street")
    data = build(MessageFactory(rendered, subject="News", sender=SENDER))
    text, html = parts(parse(data))
    assert links("ann")["unsubscribe_url"] in text
    assert links("ann")["preferences_url"] in html
    assert 'style="' in html


#: Where the tests' DKIM key is published: mailer._domainkey.example.org.
SELECTOR, DOMAIN = b"mailer", b"example.org"


def test_dkim_signature_verifies() -> None:
    """A signed message verifies against the published key and covers the list headers."""
    key = dkim_key()
    dnsfunc = key.dns(SELECTOR, DOMAIN)
    data = build(factory(dkim=(SELECTOR, DOMAIN, key.pem)))
    assert dkim.verify(data, dnsfunc=dnsfunc)
    signature = parse(data)["DKIM-Signature"]
    signed = {h.strip() for h in re.search(r"h=([^;]+)", signature.replace("\r\n", "")).group(1).split(":")}
    required = {"from", "to", "subject", "date", "message-id", "list-unsubscribe", "list-unsubscribe-post"}
    assert required <= signed
    assert "c=relaxed/relaxed" in signature
    assert "a=rsa-sha256" in signature
    tampered = re.sub(rb"Subject: [^\r]*", b"Subject: You won a prize", data, count=1)
    assert not dkim.verify(tampered, dnsfunc=dnsfunc)
    added = data.replace(b"\r\nFrom: ", b"\r\nFrom: evil@example.net\r\nFrom: ", 1)
    assert not dkim.verify(added, dnsfunc=dnsfunc)


def test_signed_message_survives_smtp(smtp_server: tuple[CaughtMail, Controller]) -> None:
    """Sent through a real SMTP server (dot-stuffing and all), the bytes still verify."""
    key = dkim_key()
    caught, controller = smtp_server
    data = build(factory(text=".a line starting with a dot\n" + TEXT, dkim=(SELECTOR, DOMAIN, key.pem)))
    smtp = SMTPTransport(SMTPSettings.from_url(f"smtp://127.0.0.1:{controller.port}"))
    smtp.send("bounces@example.org", ["ann@example.com"], data)
    caught.wait_for(1)
    assert caught.raw[0] == data
    assert dkim.verify(caught.raw[0], dnsfunc=lambda name, timeout=5: key.record)
    assert parts(caught.messages[0])[0].startswith(".a line starting with a dot\n")


def test_dkim_from_config() -> None:
    """All three settings give the signing key; any missing gives None."""
    pem = dkim_key().pem
    config = {"DKIM_SELECTOR": "mailer", "DKIM_DOMAIN": "example.org", "DKIM_KEY": pem}
    assert dkim_from_config(config) == (b"mailer", b"example.org", pem)
    assert dkim_from_config({**config, "DKIM_KEY": None}) is None
    assert dkim_from_config({}) is None
