"""Bounces as real systems write them (Exim, Exchange/Office 365, Gmail, Amazon SES): read, then acted on.

The parsing tests need no app (``read_message`` only reads); the end-to-end ones send a digest and
hand each hard bounce, addressed to its delivery's VERP address, to the worker's task body.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask

from mailer.bounces.parse import Kind, read_message
from tests.bounce_mail import exchange_ndr, exim_bounce, gmail_dsn, ses_dsn
from tests.conftest import CaughtMail
from tests.test_bounces import _process, _send_digest, _status, readers  # noqa: F401 - readers is a fixture

TO = "news+d12.a1b2c3d4@demo.mailer.invalid"
ANN = "ann@example.org"
OURS = "<20261129.digest.7@demo.mailer.invalid>"

Fixture = Callable[[str, str, str], bytes]


def _exim(to: str, recipient: str, message_id: str) -> bytes:
    return exim_bounce(to, recipient, message_id)


def _exchange(to: str, recipient: str, message_id: str) -> bytes:
    return exchange_ndr(to, recipient, message_id)


def _gmail(to: str, recipient: str, message_id: str) -> bytes:
    return gmail_dsn(to, recipient, message_id)


def _ses(to: str, recipient: str, message_id: str) -> bytes:
    return ses_dsn(to, recipient, message_id)


#: Each hard bounce, and what it carries: (status, quotes our Message-ID in a MIME part parse.py reads).
HARD: dict[str, tuple[Fixture, str | None, bool]] = {
    "exim": (_exim, None, False),  # plain text: the status is only in prose, the original only as text
    "exchange": (_exchange, "5.1.10", True),
    "gmail": (_gmail, "5.1.1", True),
    "ses": (_ses, "5.1.1", True),
}


def test_the_fixtures_are_written_as_servers_write_them() -> None:
    """CRLF line ends throughout, our VERP address as recipient, the failed address and our Message-ID inside."""
    raws = [make(TO, ANN, OURS) for make, _, _ in HARD.values()]
    raws += [gmail_dsn(TO, ANN, OURS, delayed=True), ses_dsn(TO, ANN, OURS, expired=True)]
    for raw in raws:
        assert b"\n" not in raw.replace(b"\r\n", b"")
        assert TO.encode() in raw
        assert ANN.encode() in raw
        assert OURS.encode() in raw


@pytest.mark.parametrize("name", list(HARD))
def test_a_hard_bounce_is_read(name: str) -> None:
    """Each real-format hard bounce: hard, the failed recipient, and status and Message-ID where it carries them."""
    make, status, quotes = HARD[name]
    report = read_message(make(TO, ANN, OURS), [TO])
    assert report.kind is Kind.HARD
    assert report.sent_to == [TO]
    assert report.recipients == [ANN]
    assert report.message_id  # the report's own id: a second copy is a duplicate
    if status:
        assert report.status == status
        assert status in (report.diagnostic or "")
    if quotes:
        assert report.original_message_id == OURS.strip("<>")


def test_exims_text_bounce_is_caught_by_the_heuristics() -> None:
    """Exim's classic bounce is not a multipart/report: flufl.bounce's Exim detector reads X-Failed-Recipients."""
    raw = exim_bounce(TO, ANN, OURS)
    assert b"multipart/report" not in raw
    report = read_message(raw, [TO])
    assert (report.kind, report.recipients) == (Kind.HARD, [ANN])
    assert report.diagnostic == "Mail delivery failed: returning message to sender"
    without_header = raw.replace(f"X-Failed-Recipients: {ANN}\r\n".encode(), b"")
    assert read_message(without_header, [TO]).recipients == [ANN]  # flufl's text patterns find it too


def test_exims_text_bounce_gives_its_status_and_original_message_id() -> None:
    """Exim's bounce carries the SMTP error (550 5.1.1) and the original's headers, as text."""
    report = read_message(exim_bounce(TO, ANN, OURS), [TO])
    assert report.status == "5.1.1"
    assert report.original_message_id == OURS.strip("<>")


def test_an_exchange_ndr_is_not_taken_for_an_auto_reply() -> None:
    """Office 365 writes From "Microsoft Outlook", Auto-Submitted and an "Undeliverable:" subject: still a bounce."""
    raw = exchange_ndr(TO, ANN, OURS)
    assert b"From: Microsoft Outlook <MicrosoftExchange" in raw
    assert b"X-MS-Exchange-Message-Is-Ndr:" in raw
    report = read_message(raw, [TO])
    assert report.kind is Kind.HARD
    assert "RESOLVER.ADR.RecipientNotFound" in (report.diagnostic or "")


def test_an_expired_ses_message_is_soft() -> None:
    """SES says Action: failed for a message it gave up on, with 4.4.7 "Message expired": a soft bounce."""
    report = read_message(ses_dsn(TO, ANN, OURS, expired=True), [TO])
    assert report.kind is Kind.SOFT
    assert report.recipients == [ANN]
    assert report.status == "4.4.7"
    assert "Message expired" in (report.diagnostic or "")
    assert report.original_message_id == OURS.strip("<>")


def test_a_gmail_delay_warning_is_ignored() -> None:
    """Gmail's "Delivery Status Notification (Delay)" (Action: delayed, 4.4.1) is a warning, not a bounce."""
    raw = gmail_dsn(TO, ANN, OURS, delayed=True)
    assert b"Action: delayed" in raw
    assert read_message(raw, [TO]).kind is Kind.UNKNOWN


@pytest.mark.parametrize("name", list(HARD))
def test_a_hard_bounce_to_a_deliverys_verp_address_suppresses_its_reader(
    name: str,
    app: Flask,
    mailbox: CaughtMail,
    readers: None,  # noqa: F811 - the fixture imported above
) -> None:
    """End to end: the digest goes out; the bounce comes back to ann's VERP address; ann alone is suppressed."""
    sent = _send_digest(app, mailbox)
    to, message_id = sent[ANN]
    make, _, _ = HARD[name]
    assert _process(app, make(to, ANN, message_id), [to]) == "suppressed"
    assert _status(app, ANN) == "suppressed"
    assert [_status(app, e) for e in ("bob@example.org", "cy@example.org", "dee@example.org")] == ["confirmed"] * 3


def test_an_expired_ses_message_is_counted_not_suppressed(
    app: Flask,
    mailbox: CaughtMail,
    readers: None,  # noqa: F811 - the fixture imported above
) -> None:
    """A soft SES bounce to a delivery's VERP address counts once; the reader stays."""
    sent = _send_digest(app, mailbox)
    to, message_id = sent[ANN]
    assert _process(app, ses_dsn(to, ANN, message_id, expired=True), [to]) == "counted"
    assert _status(app, ANN) == "confirmed"
