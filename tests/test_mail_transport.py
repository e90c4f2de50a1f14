"""The SMTP transport against a real in-process aiosmtpd: plain, STARTTLS, smtps, AUTH, failures, PIPELINING.

A hand-written SMTP peer (``RawSMTPServer``) records every TCP read, to see how commands arrive.
"""

from __future__ import annotations

import os
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from flask import Flask

from mailer.mail import (
    PermanentSMTPError,
    SMTPSettings,
    SMTPTransport,
    TransientSMTPError,
    get_transport,
)
from tests.conftest import free_port

MESSAGE = b"From: news@example.org\r\nTo: ann@example.org\r\nSubject: hi\r\n\r\nHello.\r\n"
#: Lines that dot-stuffing must protect: a lone ".", "..", lines starting with ".".
DOTTED = b"From: news@example.org\r\nSubject: dots\r\n\r\n.\r\n..\r\n.hidden\r\nnot . first\r\n.\r\nend\r\n"
USER, PASSWORD = "news", "p@ss:w/rd"


@dataclass
class Received:
    """One message as the server saw it."""

    peer: tuple[str, int]
    tls: bool
    mail_from: str
    rcpt_tos: list[str]
    data: bytes


@dataclass
class Recorder:
    """aiosmtpd handler that keeps messages, can refuse MAIL, RCPT or DATA, and can offer PIPELINING."""

    received: list[Received] = field(default_factory=list)
    rcpt_reply: Callable[[str], str | None] = lambda address: None
    data_reply: str | None = None
    mail_replies: list[str] = field(default_factory=list)
    pipelining: bool = False

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        """aiosmtpd's EHLO reply, with PIPELINING among the extensions when ``pipelining`` is set."""
        session.host_name = hostname  # with this hook aiosmtpd leaves it to us (else: 503 send HELO first)
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        """Accept the sender, unless ``mail_replies`` holds the next answer."""
        if self.mail_replies:
            return self.mail_replies.pop(0)
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        """Accept the recipient unless ``rcpt_reply`` says otherwise."""
        answer = self.rcpt_reply(address)
        if answer:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Keep the message unless ``data_reply`` is set."""
        if self.data_reply:
            return self.data_reply
        data = envelope.original_content or envelope.content
        self.received.append(
            Received(session.peer, _over_tls(server), envelope.mail_from, list(envelope.rcpt_tos), data)
        )
        return "250 OK"


def _over_tls(server: SMTP) -> bool:
    """Whether the session's connection is encrypted (STARTTLS or implicit TLS)."""
    return server.transport.get_extra_info("ssl_object") is not None


def authenticator(server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: object) -> AuthResult:
    """Accept USER with PASSWORD; anything else gets aiosmtpd's 535."""
    ok = isinstance(data, LoginPassword) and data.login == USER.encode() and data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    """A throwaway certificate authority."""
    return trustme.CA()


@pytest.fixture(scope="module")
def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    """The server's TLS context with a certificate for 127.0.0.1 signed by ``ca``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture(scope="module")
def client_tls(ca: trustme.CA) -> ssl.SSLContext:
    """A default (verifying) client context that also trusts ``ca``."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@pytest.fixture
def serve() -> Iterator[Callable[..., Controller]]:
    """Start aiosmtpd controllers (``serve(handler, port=None, **smtp_options)``); stop them after."""
    started: list[Controller] = []

    def start(handler: Recorder, port: int | None = None, **options: object) -> Controller:
        controller = Controller(handler, hostname="127.0.0.1", port=port or free_port(), **options)
        controller.start()
        started.append(controller)
        return controller

    yield start
    for controller in started:
        if controller._thread is not None:
            controller.stop()


@pytest.fixture(params=[False, True], ids=["sequential", "pipelining"])
def pipelining(request: pytest.FixtureRequest) -> bool:
    """Run the test against a server without PIPELINING in its EHLO reply, then with it."""
    return request.param


class RawSMTPServer(socketserver.ThreadingTCPServer):
    """A minimal SMTP server that records every TCP read from its clients and every message.

    ``drop_after_content`` hangs up instead of answering the message; ``hang`` stops answering
    MAIL once a message has arrived (until the test ends).
    """

    daemon_threads = True
    block_on_close = False

    def __init__(self, *, pipelining: bool) -> None:
        super().__init__(("127.0.0.1", 0), RawSMTPSession)
        self.pipelining = pipelining
        self.drop_after_content = False
        self.hang = False
        self.reads: list[bytes] = []
        self.messages: list[bytes] = []
        self.connections = 0
        self.closing = threading.Event()

    @property
    def port(self) -> int:
        """The port it listens on."""
        return self.server_address[1]


class RawSMTPSession(socketserver.BaseRequestHandler):
    """One client connection to a RawSMTPServer, answered line by line."""

    server: RawSMTPServer

    def handle(self) -> None:
        """Greet, then answer each command until QUIT or the client hangs up."""
        self.server.connections += 1
        self.pending = b""
        self.request.sendall(b"220 raw.example.org ESMTP\r\n")
        while (line := self.line()) is not None:
            verb = line[:4].upper()
            if verb == b"EHLO":
                extensions = b"250-PIPELINING\r\n" if self.server.pipelining else b""
                self.request.sendall(b"250-raw.example.org\r\n" + extensions + b"250 8BITMIME\r\n")
            elif verb == b"MAIL" and self.server.hang and self.server.messages:
                self.server.closing.wait()
                return
            elif verb == b"DATA":
                self.request.sendall(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                message = self.message()
                if message is None or self.server.drop_after_content:
                    return
                self.server.messages.append(message)
                self.request.sendall(b"250 2.0.0 Ok: queued\r\n")
            elif verb == b"QUIT":
                self.request.sendall(b"221 2.0.0 Bye\r\n")
                return
            else:
                self.request.sendall(b"250 2.0.0 Ok\r\n")

    def line(self) -> bytes | None:
        """The next line without its CRLF (None when the client hung up); each TCP read is recorded."""
        while b"\r\n" not in self.pending:
            chunk = self.request.recv(65536)
            if not chunk:
                return None
            self.server.reads.append(chunk)
            self.pending += chunk
        line, _, self.pending = self.pending.partition(b"\r\n")
        return line

    def message(self) -> bytes | None:
        """The message after DATA, dot-stuffing undone (None when the client hung up first)."""
        lines = []
        while (line := self.line()) != b".":
            if line is None:
                return None
            lines.append(line[1:] if line.startswith(b".") else line)
        return b"".join(line + b"\r\n" for line in lines)


@pytest.fixture
def serve_raw() -> Iterator[Callable[..., RawSMTPServer]]:
    """Start RawSMTPServers (``serve_raw(pipelining=...)``); stop them after."""
    started: list[RawSMTPServer] = []

    def start(*, pipelining: bool) -> RawSMTPServer:
        server = RawSMTPServer(pipelining=pipelining)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.closing.set()
        server.shutdown()
        server.server_close()


def transport(url: str, context: ssl.SSLContext | None = None) -> SMTPTransport:
    """A transport for ``url``."""
    return SMTPTransport(SMTPSettings.from_url(url), ssl_context=context)


def test_settings_from_url() -> None:
    """Schemes, default ports, STARTTLS, percent-encoded credentials and the timeout are read."""
    plain = SMTPSettings.from_url("smtp://mail.example.org")
    assert (plain.host, plain.port, plain.implicit_tls, plain.starttls, plain.username) == (
        "mail.example.org",
        25,
        False,
        False,
        None,
    )
    assert plain.timeout == 30
    tls = SMTPSettings.from_url("smtps://u%40x.org:p%40ss%3Aw%2Frd@mail.example.org?timeout=5")
    assert (tls.port, tls.implicit_tls, tls.username, tls.password, tls.timeout) == (
        465,
        True,
        "u@x.org",
        "p@ss:w/rd",
        5.0,
    )
    assert SMTPSettings.from_url("smtp://h:587?starttls=1").starttls
    assert SMTPSettings.from_url("smtp://relay:secret@127.0.0.1:25").password == "secret"


@pytest.mark.parametrize(
    "url",
    [
        "http://mail.example.org",
        "smtp://",
        "smtps://h?starttls=1",
        "smtp://h?tls=1",
        "smtp://h?timeout=soon",
        "smtp://h?timeout=0",
        "smtp://h?starttls=maybe",
        "smtp://h:99999",
        "smtp://user:secret@mail.example.org",
    ],
)
def test_settings_refuse_bad_urls(url: str) -> None:
    """A malformed SMTP_URL is a clear ValueError, not a failure at the first send."""
    with pytest.raises(ValueError, match="SMTP_URL"):
        SMTPSettings.from_url(url)


def test_plain_sends_reuse_one_connection(serve: Callable[..., Controller], pipelining: bool) -> None:
    """Two messages go over one connection; an international domain is sent as IDNA."""
    handler = Recorder(pipelining=pipelining)
    server = serve(handler)
    smtp = transport(f"smtp://127.0.0.1:{server.port}")
    smtp.send("bounces@example.org", ["ann@example.org"], MESSAGE)
    smtp.send("bounces@example.org", ["bob@exämple.org"], MESSAGE)
    first, second = handler.received
    assert first.peer == second.peer
    assert (first.mail_from, first.rcpt_tos, second.rcpt_tos) == (
        "bounces@example.org",
        ["ann@example.org"],
        ["bob@xn--exmple-cua.org"],
    )
    assert first.data == MESSAGE
    assert not first.tls


def test_message_arrives_byte_for_byte(serve: Callable[..., Controller], pipelining: bool) -> None:
    """Lines starting with "." (a lone ".", "..") arrive as written, once, for every recipient."""
    handler = Recorder(pipelining=pipelining)
    server = serve(handler)
    smtp = transport(f"smtp://127.0.0.1:{server.port}")
    smtp.send("", ["ann@example.org", "bob@example.org", "cy@example.org"], DOTTED)
    smtp.send("b@example.org", ["dee@example.org"], DOTTED)
    assert [(r.mail_from, r.rcpt_tos, r.data) for r in handler.received] == [
        ("<>", ["ann@example.org", "bob@example.org", "cy@example.org"], DOTTED),
        ("b@example.org", ["dee@example.org"], DOTTED),
    ]


def test_bare_line_ends_become_crlf(serve: Callable[..., Controller], pipelining: bool) -> None:
    """Bare LF or CR end lines as CRLF, and a "." between them cannot end the message early."""
    handler = Recorder(pipelining=pipelining)
    server = serve(handler)
    smuggled = b"Subject: x\n\nfirst\n.\nMAIL FROM:<x@evil.org>\r.\rlast"
    transport(f"smtp://127.0.0.1:{server.port}").send("b@example.org", ["a@example.org"], smuggled)
    assert [r.data for r in handler.received] == [
        b"Subject: x\r\n\r\nfirst\r\n.\r\nMAIL FROM:<x@evil.org>\r\n.\r\nlast\r\n"
    ]


def test_pipelining_sends_the_envelope_in_one_write(serve_raw: Callable[..., RawSMTPServer]) -> None:
    """When the server offers PIPELINING, it receives MAIL, every RCPT and DATA in one TCP read."""
    server = serve_raw(pipelining=True)
    smtp = transport(f"smtp://127.0.0.1:{server.port}")
    smtp.send("b@example.org", ["ann@example.org", "bob@example.org"], MESSAGE)
    smtp.send("b@example.org", ["cy@example.org"], DOTTED)
    assert b"MAIL FROM:<b@example.org>\r\nRCPT TO:<ann@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n" in (
        server.reads
    )
    assert b"MAIL FROM:<b@example.org>\r\nRCPT TO:<cy@example.org>\r\nDATA\r\n" in server.reads
    assert server.messages == [MESSAGE, DOTTED]
    assert server.connections == 1


def test_without_pipelining_each_command_waits(serve_raw: Callable[..., RawSMTPServer]) -> None:
    """A server that does not offer PIPELINING gets one command at a time, each after its reply."""
    server = serve_raw(pipelining=False)
    transport(f"smtp://127.0.0.1:{server.port}").send("b@example.org", ["ann@example.org", "bob@example.org"], MESSAGE)
    assert [read for read in server.reads if read[:4] in (b"MAIL", b"RCPT", b"DATA")] == [
        b"MAIL FROM:<b@example.org>\r\n",
        b"RCPT TO:<ann@example.org>\r\n",
        b"RCPT TO:<bob@example.org>\r\n",
        b"DATA\r\n",
    ]
    assert server.messages == [MESSAGE]


def test_drop_after_the_message_is_transient_and_not_resent(
    serve_raw: Callable[..., RawSMTPServer], pipelining: bool
) -> None:
    """A connection lost after the message went out may have delivered it: transient at data, no retry."""
    server = serve_raw(pipelining=pipelining)
    smtp = transport(f"smtp://127.0.0.1:{server.port}")
    smtp.send("b@example.org", ["a@example.org"], MESSAGE)
    server.drop_after_content = True
    with pytest.raises(TransientSMTPError) as caught:
        smtp.send("b@example.org", ["a@example.org"], MESSAGE)
    assert (caught.value.code, caught.value.phase) == (None, "data")
    assert server.connections == 1
    server.drop_after_content = False
    smtp.send("b@example.org", ["a@example.org"], MESSAGE)
    assert server.connections == 2
    assert len(server.messages) == 2


def test_hung_server_costs_one_timeout(serve_raw: Callable[..., RawSMTPServer], pipelining: bool) -> None:
    """A reused connection whose server stops answering: one timeout, transient, no second connection."""
    server = serve_raw(pipelining=pipelining)
    smtp = transport(f"smtp://127.0.0.1:{server.port}?timeout=0.3")
    smtp.send("b@example.org", ["a@example.org"], MESSAGE)
    server.hang = True
    started = time.monotonic()
    with pytest.raises(TransientSMTPError) as caught:
        smtp.send("b@example.org", ["a@example.org"], MESSAGE)
    assert (caught.value.code, caught.value.phase, caught.value.reply) == (None, "mail", "no reply in 0.3 s")
    assert time.monotonic() - started >= 0.3
    assert server.connections == 1


def test_starttls_with_trusted_certificate(
    serve: Callable[..., Controller], server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    """``?starttls=1`` upgrades the connection, verifying the server's certificate."""
    handler = Recorder()
    server = serve(handler, tls_context=server_tls, require_starttls=True)
    transport(f"smtp://127.0.0.1:{server.port}?starttls=1", client_tls).send(
        "b@example.org", ["a@example.org"], MESSAGE
    )
    assert handler.received[0].tls


def test_untrusted_certificate_is_refused(serve: Callable[..., Controller], server_tls: ssl.SSLContext) -> None:
    """With the default context a certificate from an unknown CA stops the send before any data."""
    handler = Recorder()
    server = serve(handler, tls_context=server_tls, require_starttls=True)
    with pytest.raises(PermanentSMTPError, match="certificate") as caught:
        transport(f"smtp://127.0.0.1:{server.port}?starttls=1").send("b@example.org", ["a@example.org"], MESSAGE)
    assert caught.value.phase == "connect"
    assert not caught.value.recipient_refused
    assert handler.received == []


def test_implicit_tls(serve: Callable[..., Controller], server_tls: ssl.SSLContext, client_tls: ssl.SSLContext) -> None:
    """``smtps://`` speaks TLS from the first byte."""
    handler = Recorder()
    server = serve(handler, ssl_context=server_tls)
    transport(f"smtps://127.0.0.1:{server.port}", client_tls).send("b@example.org", ["a@example.org"], MESSAGE)
    assert handler.received[0].tls


def auth_url(serve: Callable[..., Controller], server_tls: ssl.SSLContext, handler: Recorder, password: str) -> str:
    """Start a server that demands AUTH, offered only after STARTTLS; the SMTP_URL to log in with."""
    server = serve(
        handler,
        tls_context=server_tls,
        require_starttls=True,
        authenticator=authenticator,
        auth_required=True,
        auth_require_tls=True,
    )
    return f"smtp://{USER}:{password}@127.0.0.1:{server.port}?starttls=1"


def test_auth_over_tls(
    serve: Callable[..., Controller], server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    """Percent-encoded credentials from the URL log in over STARTTLS."""
    handler = Recorder()
    transport(auth_url(serve, server_tls, handler, "p%40ss%3Aw%2Frd"), client_tls).send(
        "b@example.org", ["a@example.org"], MESSAGE
    )
    assert len(handler.received) == 1


def test_wrong_password_is_permanent(
    serve: Callable[..., Controller], server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    """A wrong password is a permanent 535 at the auth phase, never blamed on the recipient."""
    handler = Recorder()
    with pytest.raises(PermanentSMTPError) as caught:
        transport(auth_url(serve, server_tls, handler, "wrong"), client_tls).send(
            "b@example.org", ["a@example.org"], MESSAGE
        )
    assert caught.value.code == 535
    assert caught.value.phase == "auth"
    assert "Authentication" in caught.value.reply
    assert not caught.value.recipient_refused
    assert handler.received == []


def test_reconnects_after_server_restart(serve: Callable[..., Controller], pipelining: bool) -> None:
    """When the server went away between two sends, the second one succeeds on a new connection."""
    handler = Recorder(pipelining=pipelining)
    server = serve(handler)
    smtp = transport(f"smtp://127.0.0.1:{server.port}")
    smtp.send("b@example.org", ["a@example.org"], MESSAGE)
    server.stop()
    serve(handler, port=server.port)
    smtp.send("b@example.org", ["c@example.org"], MESSAGE)
    first, second = handler.received
    assert second.rcpt_tos == ["c@example.org"]
    assert second.peer != first.peer


def test_reconnects_after_idle_timeout(serve: Callable[..., Controller], pipelining: bool) -> None:
    """A connection the server closed for idling is replaced transparently."""
    handler = Recorder(pipelining=pipelining)
    server = serve(handler, timeout=0.2)
    smtp = transport(f"smtp://127.0.0.1:{server.port}")
    smtp.send("b@example.org", ["a@example.org"], MESSAGE)
    time.sleep(0.5)
    smtp.send("b@example.org", ["c@example.org"], MESSAGE)
    assert [r.rcpt_tos for r in handler.received] == [["a@example.org"], ["c@example.org"]]


def test_reconnects_after_421_closing(serve: Callable[..., Controller], pipelining: bool) -> None:
    """A 421 ("closing channel") to MAIL on a reused connection is retried once on a new one."""
    handler = Recorder(pipelining=pipelining)
    server = serve(handler)
    smtp = transport(f"smtp://127.0.0.1:{server.port}")
    smtp.send("b@example.org", ["a@example.org"], MESSAGE)
    handler.mail_replies = ["421 4.4.2 Idle too long, closing"]
    smtp.send("b@example.org", ["c@example.org"], MESSAGE)
    first, second = handler.received
    assert second.rcpt_tos == ["c@example.org"]
    assert second.peer != first.peer
    handler.mail_replies = ["421 4.3.2 Shutting down", "421 4.3.2 Shutting down"]
    with pytest.raises(TransientSMTPError) as caught:
        smtp.send("b@example.org", ["d@example.org"], MESSAGE)
    assert (caught.value.code, caught.value.phase) == (421, "mail")


def test_4xx_is_transient_and_connection_stays_usable(serve: Callable[..., Controller], pipelining: bool) -> None:
    """A 451 is transient with its code and text; after RSET the same connection sends again."""
    handler = Recorder(data_reply="451 4.3.0 Try again later", pipelining=pipelining)
    server = serve(handler)
    smtp = transport(f"smtp://127.0.0.1:{server.port}")
    with pytest.raises(TransientSMTPError) as caught:
        smtp.send("b@example.org", ["a@example.org"], MESSAGE)
    assert (caught.value.code, caught.value.phase) == (451, "data")
    assert "Try again later" in caught.value.reply
    handler.data_reply = None
    smtp.send("b@example.org", ["a@example.org"], MESSAGE)
    smtp.send("b@example.org", ["a@example.org"], MESSAGE)
    assert len({r.peer for r in handler.received}) == 1


def test_5xx_recipient_is_permanent_bounce(serve: Callable[..., Controller], pipelining: bool) -> None:
    """A 550 on RCPT keeps the server's code and text and marks the recipient as refused."""
    handler = Recorder(
        rcpt_reply=lambda a: "550 5.1.1 No such user here" if a.startswith("gone") else None, pipelining=pipelining
    )
    server = serve(handler)
    smtp = transport(f"smtp://127.0.0.1:{server.port}")
    smtp.send("b@example.org", ["here@example.org"], MESSAGE)
    with pytest.raises(PermanentSMTPError) as caught:
        smtp.send("b@example.org", ["gone@example.org"], MESSAGE)
    error = caught.value
    assert (error.code, error.reply, error.phase, error.recipient_refused) == (
        550,
        "5.1.1 No such user here",
        "rcpt",
        True,
    )
    smtp.send("b@example.org", ["again@example.org"], MESSAGE)
    first, second = handler.received
    assert (first.rcpt_tos, second.rcpt_tos) == (["here@example.org"], ["again@example.org"])
    assert first.peer == second.peer  # the refusal left the connection usable


def test_4xx_recipient_is_transient(serve: Callable[..., Controller], pipelining: bool) -> None:
    """A 451 on RCPT (greylisting) is transient at rcpt, not a bounce; the connection goes on."""
    handler = Recorder(
        rcpt_reply=lambda a: "451 4.7.1 Greylisted" if a.startswith("grey") else None, pipelining=pipelining
    )
    server = serve(handler)
    smtp = transport(f"smtp://127.0.0.1:{server.port}")
    smtp.send("b@example.org", ["here@example.org"], MESSAGE)
    with pytest.raises(TransientSMTPError) as caught:
        smtp.send("b@example.org", ["grey@example.org"], MESSAGE)
    assert (caught.value.code, caught.value.phase, caught.value.reply) == (451, "rcpt", "4.7.1 Greylisted")
    smtp.send("b@example.org", ["again@example.org"], MESSAGE)
    assert len({r.peer for r in handler.received}) == 1
    assert len(handler.received) == 2


def test_5xx_sender_is_permanent_and_not_a_bounce(serve: Callable[..., Controller], pipelining: bool) -> None:
    """A 553 on MAIL is about the sender (phase mail): permanent, no recipient refused, connection usable."""
    handler = Recorder(pipelining=pipelining)
    server = serve(handler)
    smtp = transport(f"smtp://127.0.0.1:{server.port}")
    smtp.send("b@example.org", ["a@example.org"], MESSAGE)
    handler.mail_replies = ["553 5.7.1 Sender address rejected"]
    with pytest.raises(PermanentSMTPError) as caught:
        smtp.send("b@example.org", ["a@example.org", "c@example.org"], MESSAGE)
    error = caught.value
    assert (error.code, error.phase, error.recipient_refused) == (553, "mail", False)
    smtp.send("b@example.org", ["c@example.org"], MESSAGE)
    assert [r.rcpt_tos for r in handler.received] == [["a@example.org"], ["c@example.org"]]
    assert len({r.peer for r in handler.received}) == 1


def test_one_refused_recipient_sends_to_nobody(serve: Callable[..., Controller], pipelining: bool) -> None:
    """With several recipients, one refusal cancels the whole transaction (no partial delivery).

    A pipelining server answers DATA with 354 for the others: the transport hangs up rather than send.
    """
    handler = Recorder(
        rcpt_reply=lambda a: "550 5.1.1 No such user" if a.startswith("gone") else None, pipelining=pipelining
    )
    server = serve(handler)
    smtp = transport(f"smtp://127.0.0.1:{server.port}")
    with pytest.raises(PermanentSMTPError) as caught:
        smtp.send("b@example.org", ["ann@example.org", "gone@example.org", "bob@example.org"], MESSAGE)
    assert (caught.value.code, caught.value.phase) == (550, "rcpt")
    smtp.send("b@example.org", ["bob@example.org"], MESSAGE)
    assert [r.rcpt_tos for r in handler.received] == [["bob@example.org"]]


def test_5xx_on_data_is_permanent_but_not_a_bounce(serve: Callable[..., Controller], pipelining: bool) -> None:
    """A message refused at DATA is permanent, yet says nothing against the address."""
    server = serve(Recorder(data_reply="554 5.7.1 Message rejected as spam", pipelining=pipelining))
    with pytest.raises(PermanentSMTPError) as caught:
        transport(f"smtp://127.0.0.1:{server.port}").send("b@example.org", ["a@example.org"], MESSAGE)
    assert (caught.value.code, caught.value.phase, caught.value.recipient_refused) == (554, "data", False)


def test_header_injection_in_envelope_is_refused() -> None:
    """An envelope address with CR/LF never reaches the wire; only a bad recipient counts as a bounce."""
    smtp = transport("smtp://127.0.0.1:1")
    with pytest.raises(PermanentSMTPError, match="single line") as caught:
        smtp.send("b@example.org", ["a@example.org\r\nRCPT TO:<x@evil.org>"], MESSAGE)
    assert caught.value.code == 553
    assert caught.value.recipient_refused
    with pytest.raises(ValueError, match="single line"):
        smtp.send("b@example.org\r\nRCPT TO:<x@evil.org>", ["a@example.org"], MESSAGE)


def test_unreachable_port_is_transient_and_quick() -> None:
    """Nothing listening: a transient connect failure at once."""
    started = time.monotonic()
    with pytest.raises(TransientSMTPError) as caught:
        transport(f"smtp://127.0.0.1:{free_port()}?timeout=2").send("b@example.org", ["a@example.org"], MESSAGE)
    assert caught.value.phase == "connect"
    assert caught.value.code is None
    assert time.monotonic() - started < 2


def test_silent_server_times_out() -> None:
    """A server that accepts the TCP connection but never greets: the timeout is honoured."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        started = time.monotonic()
        with pytest.raises(TransientSMTPError) as caught:
            url = f"smtp://127.0.0.1:{listener.getsockname()[1]}?timeout=0.3"
            transport(url).send("b@example.org", ["a@example.org"], MESSAGE)
    assert caught.value.phase == "connect"
    assert 0.3 <= time.monotonic() - started < 2


def test_get_transport_one_per_process(serve: Callable[..., Controller]) -> None:
    """One transport per process and URL; a forked child opens its own connection."""
    handler = Recorder()
    server = serve(handler)
    app = Flask(__name__)
    app.config["SMTP_URL"] = f"smtp://127.0.0.1:{server.port}"
    with app.app_context():
        parent = get_transport()
        assert get_transport() is parent
        parent.send("b@example.org", ["parent@example.org"], MESSAGE)
        pid = os.fork()
        if pid == 0:  # the child: a fresh transport that sends on its own connection
            try:
                child = get_transport()
                child.send("b@example.org", ["child@example.org"], MESSAGE)
                os._exit(0 if child is not parent else 3)
            except BaseException:
                os._exit(4)
        assert os.waitpid(pid, 0)[1] == 0
        parent.send("b@example.org", ["parent@example.org"], MESSAGE)
    peers = {tuple(r.rcpt_tos): r.peer for r in handler.received}
    assert len(handler.received) == 3
    assert peers[("child@example.org",)] != peers[("parent@example.org",)]
    assert handler.received[0].peer == handler.received[2].peer
