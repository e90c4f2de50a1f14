"""``doctor``: a real DNS server (UDP, dnspython), a real link server and the app served over https in threads."""

from __future__ import annotations

import json
import re
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
import trustme
from flask import Flask
from flask.testing import FlaskCliRunner
from werkzeug.serving import make_server

from mailer import create_app
from mailer.config import load_config
from mailer.content.importer import import_text
from tests.conftest import AuthActions
from tests.data import dkim_key, meeting, news_item

#: What a healthy example.org publishes: SPF for the From and the bounce domain, the DKIM key, a DMARC policy.
HEALTHY_RECORDS = {
    "example.org": ["v=spf1 ip4:192.0.2.25 -all"],
    "bounces.example.org": ["v=spf1 ip4:192.0.2.25 -all"],
    "_dmarc.example.org": ["v=DMARC1; p=reject; rua=mailto:dmarc@example.org"],
}
LINE = re.compile(r"^(ok|warn|FAIL)\s+(.+?): (.*)$")


class DNSServer:
    """A UDP DNS server answering TXT questions from ``records`` (name → texts); NXDOMAIN for other names."""

    def __init__(self, records: dict[str, list[str]]) -> None:
        self.records = records
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.address = self.sock.getsockname()
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        """Answer each query until stopped."""
        while self.running:
            try:
                data, client = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            self.sock.sendto(self._answer(dns.message.from_wire(data)).to_wire(), client)

    def _answer(self, query: dns.message.Message) -> dns.message.Message:
        """The response to one query."""
        response = dns.message.make_response(query)
        question = query.question[0]
        texts = self.records.get(question.name.to_text(omit_final_dot=True).lower())
        if texts is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif question.rdtype == dns.rdatatype.TXT and texts:
            response.answer.append(
                dns.rrset.from_text_list(question.name, 60, "IN", "TXT", [_quoted(t) for t in texts])
            )
        return response

    def stop(self) -> None:
        """Stop answering and close the socket."""
        self.running = False
        self.thread.join()
        self.sock.close()


def _quoted(text: str) -> str:
    """A TXT record's presentation form: strings of at most 255 characters, quoted."""
    chunks = [text[i : i + 255].replace("\\", "\\\\").replace('"', '\\"') for i in range(0, len(text), 255)]
    return " ".join(f'"{chunk}"' for chunk in chunks)


class LinkHandler(BaseHTTPRequestHandler):
    """``/ok`` answers 200, anything else 404, to HEAD, GET and POST."""

    def do_HEAD(self) -> None:
        """Status only."""
        self.send_response(200 if self.path == "/ok" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        """Same as HEAD."""
        self.do_HEAD()

    def do_POST(self) -> None:
        """Same as HEAD: a 404 of its own for an unsubscribe link."""
        self.do_HEAD()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def links() -> Iterator[str]:
    """A local web server for the digest's links: its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), LinkHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def dns_records() -> Iterator[dict[str, list[str]]]:
    """The records the test's DNS server publishes (change them in the test); DKIM's included."""
    records = {**HEALTHY_RECORDS, "mailer._domainkey.example.org": [dkim_key().record.decode()]}
    yield records


@pytest.fixture
def dns_server(dns_records: dict[str, list[str]]) -> Iterator[DNSServer]:
    """The DNS server, on a free UDP port."""
    server = DNSServer(dns_records)
    yield server
    server.stop()


@pytest.fixture
def serve(app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[bool], str]]:
    """Serve ``app`` in a thread (https with a test CA the doctor trusts, or plain http); return its base URL."""
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    servers = []

    def start(https: bool = True) -> str:
        context = None
        if https:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ca.issue_cert("127.0.0.1").configure_cert(context)
        server = make_server("127.0.0.1", 0, app, threaded=True, ssl_context=context)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return f"{'https' if https else 'http'}://127.0.0.1:{server.server_port}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def healthy(app: Flask, dns_server: DNSServer, links: str, serve: Callable[[bool], str]) -> Flask:
    """The app set up as deliverable: aligned SPF and DKIM, DMARC p=reject, https, a digest whose links answer."""
    app.config.update(
        MAIL_FROM="SMEWG News <news@example.org>",
        BOUNCE_ADDRESS="bounces@bounces.example.org",
        DKIM_DOMAIN="example.org",
        DKIM_SELECTOR="mailer",
        DKIM_KEY=dkim_key().pem,
        DNS_NAMESERVER=dns_server.address,
        BASE_URL=serve(True),
    )
    _import(app, meetings=[meeting(link=f"{links}/ok")], news=[news_item()])
    return app


def _import(app: Flask, **content: list[dict[str, object]]) -> None:
    """Import content (it becomes the next digest's)."""
    with app.app_context():
        import_text(json.dumps(content))


def _doctor(runner: FlaskCliRunner) -> tuple[int, list[tuple[str, str, str]]]:
    """Run ``doctor``; its exit code and its lines as (level, check, detail)."""
    result = runner.invoke(args=["doctor"])
    lines = result.output.splitlines()
    parsed = [match.groups() for match in map(LINE.match, lines) if match]
    assert len(parsed) == len(lines), result.output
    return result.exit_code, parsed  # type: ignore[return-value]


def _failed(lines: list[tuple[str, str, str]]) -> list[str]:
    """The names of the checks that failed."""
    return [name for level, name, _ in lines if level == "FAIL"]


def test_all_good(healthy: Flask, runner: FlaskCliRunner) -> None:
    """Every check passes: exit 0, one ok line per check."""
    code, lines = _doctor(runner)
    assert code == 0
    assert {level for level, _, _ in lines} == {"ok"}, lines
    names = [name for _, name, _ in lines]
    assert names[:7] == [
        "SPF (From domain example.org)",
        "SPF (bounce domain bounces.example.org)",
        "SPF alignment",
        "DKIM alignment",
        "DKIM key (mailer._domainkey.example.org)",
        "DMARC (example.org)",
        "BASE_URL",
    ]
    assert "One-click unsubscribe" in names
    assert {"Digest size (meetings)", "Digest size (news)", "Digest size (meetings+news)", "Links"} <= set(names)
    assert dict((name, detail) for _, name, detail in lines)["Links"].startswith("all 3 links")


def _missing_spf(app: Flask, records: dict[str, list[str]]) -> None:
    del records["bounces.example.org"]


def _two_spf(app: Flask, records: dict[str, list[str]]) -> None:
    records["example.org"] = ["v=spf1 ip4:192.0.2.25 -all", "v=spf1 include:relay.example.net -all"]


def _missing_dmarc(app: Flask, records: dict[str, list[str]]) -> None:
    del records["_dmarc.example.org"]


def _other_dkim_key(app: Flask, records: dict[str, list[str]]) -> None:
    app.config["DKIM_KEY"] = dkim_key(1024).pem


@pytest.mark.parametrize(
    ("change", "check"),
    [
        (_missing_spf, "SPF (bounce domain bounces.example.org)"),
        (_two_spf, "SPF (From domain example.org)"),
        (_missing_dmarc, "DMARC (example.org)"),
        (_other_dkim_key, "DKIM key (mailer._domainkey.example.org)"),
    ],
    ids=["missing-spf", "two-spf", "missing-dmarc", "dkim-mismatch"],
)
def test_dns_problem_fails_its_check(
    healthy: Flask, runner: FlaskCliRunner, dns_records: dict[str, list[str]], change: Callable[..., None], check: str
) -> None:
    """One DNS problem: exactly its check fails, saying what to publish, and the exit code is 1."""
    change(healthy, dns_records)
    code, lines = _doctor(runner)
    assert code == 1
    assert _failed(lines) == [check]
    detail = next(detail for level, _, detail in lines if level == "FAIL")
    assert "publish" in detail or "merge" in detail


def test_misaligned_bounce_domain_warns_while_dkim_aligns(healthy: Flask, runner: FlaskCliRunner) -> None:
    """A bounce domain under another organisation: SPF cannot pass DMARC, DKIM still can (a warning)."""
    healthy.config["BOUNCE_ADDRESS"] = "bounces@example.net"
    code, lines = _doctor(runner)
    alignment = next(line for line in lines if line[1] == "SPF alignment")
    assert alignment[0] == "warn" and "example.net" in alignment[2]
    assert _failed(lines) == ["SPF (bounce domain example.net)"]
    assert code == 1


def test_dmarc_p_none_warns(healthy: Flask, runner: FlaskCliRunner, dns_records: dict[str, list[str]]) -> None:
    """p=none is reported as a warning: exit 0."""
    dns_records["_dmarc.example.org"] = ["v=DMARC1; p=none"]
    code, lines = _doctor(runner)
    assert code == 0
    assert ("warn", "DMARC (example.org)") in [(level, name) for level, name, _ in lines]


def test_dkim_off_warns(healthy: Flask, runner: FlaskCliRunner) -> None:
    """Without DKIM settings: one warning saying which variables to set."""
    healthy.config.update(DKIM_DOMAIN=None, DKIM_SELECTOR=None, DKIM_KEY=None)
    code, lines = _doctor(runner)
    assert code == 0
    dkim = [line for line in lines if line[1].startswith("DKIM")]
    assert [(level, name) for level, name, _ in dkim] == [("warn", "DKIM")]
    assert "DKIM_PRIVATE_KEY" in dkim[0][2]


def test_http_base_url(healthy: Flask, runner: FlaskCliRunner, serve: Callable[[bool], str]) -> None:
    """Plain http fails in production; on loopback in development it is a warning. One-click still answers."""
    healthy.config["BASE_URL"] = serve(False)
    code, lines = _doctor(runner)
    assert code == 0
    assert ("warn", "BASE_URL") in [(level, name) for level, name, _ in lines]
    healthy.config["MAILER_ENV"] = "production"
    code, lines = _doctor(runner)
    assert code == 1
    assert _failed(lines) == ["BASE_URL"]
    assert "https" in next(detail for _, name, detail in lines if name == "BASE_URL")


def test_one_click_must_reach_mailer(healthy: Flask, runner: FlaskCliRunner, links: str) -> None:
    """A BASE_URL whose server is not mailer (a 404 of its own) fails the one-click check."""
    healthy.config["BASE_URL"] = links
    code, lines = _doctor(runner)
    assert code == 1
    one_click = next(line for line in lines if line[1] == "One-click unsubscribe")
    assert one_click[0] == "FAIL" and "answered 404" in one_click[2]


def test_broken_link(healthy: Flask, runner: FlaskCliRunner, links: str) -> None:
    """A link answering 404 fails, named; the working ones are not listed."""
    _import(healthy, projects=[{"slug": "gone", "title": "Gone", "status": "implementing", "link": f"{links}/gone"}])
    code, lines = _doctor(runner)
    assert code == 1
    assert _failed(lines) == ["Link"]
    assert next(detail for level, _, detail in lines if level == "FAIL").startswith(f"{links}/gone: answered 404")


def test_oversized_digest(healthy: Flask, runner: FlaskCliRunner) -> None:
    """Long news items take every variant with news past Gmail's 102 KB: those fail, meetings alone passes."""
    body = "\n\n".join(["The working group met to review progress on each project under way. " * 40] * 7)[:19_000]
    _import(healthy, news=[news_item(slug=f"long-{n}", title=f"Long {n}", body=body) for n in range(6)])
    code, lines = _doctor(runner)
    assert code == 1
    assert _failed(lines) == ["Digest size (news)", "Digest size (meetings+news)"]
    assert ("ok", "Digest size (meetings)") in [(level, name) for level, name, _ in lines]


def test_console_lists_the_same_results(
    healthy: Flask, runner: FlaskCliRunner, auth: AuthActions, dns_records: dict[str, list[str]]
) -> None:
    """The next-digest page links to the checks; the page shows every check and keeps the results 5 minutes."""
    del dns_records["_dmarc.example.org"]
    _, lines = _doctor(runner)
    client = auth.login()
    assert 'href="/staff/digests/next/checks"' in client.get("/staff/digests/next").get_data(as_text=True)
    page = client.get("/staff/digests/next/checks").get_data(as_text=True)
    rows = re.findall(r'<tr class="check-(\w+)"><td>.*?</td><td>(.*?)</td>', page)
    assert rows == [(level.lower(), name) for level, name, _ in lines]
    assert "kept for 5 minutes" in page
    dns_records["_dmarc.example.org"] = HEALTHY_RECORDS["_dmarc.example.org"]
    again = client.get("/staff/digests/next/checks").get_data(as_text=True)
    assert re.findall(r'<tr class="check-(\w+)">', again) == [level for level, _ in rows]


def test_console_page_needs_sign_in(client: object) -> None:
    """Anonymous visitors are sent to the sign-in page."""
    response = client.get("/staff/digests/next/checks")  # type: ignore[attr-defined]
    assert response.status_code == 302
    assert "/staff/login" in response.headers["Location"]


def test_nameserver_setting(tmp_path: Path) -> None:
    """DNS_NAMESERVER takes an IP address with an optional port; unset is the system resolver."""
    assert load_config({}, str(tmp_path))["DNS_NAMESERVER"] is None
    assert load_config({"DNS_NAMESERVER": "192.0.2.53"}, str(tmp_path))["DNS_NAMESERVER"] == ("192.0.2.53", 53)
    assert load_config({"DNS_NAMESERVER": "[2001:db8::53]:5353"}, str(tmp_path))["DNS_NAMESERVER"] == (
        "2001:db8::53",
        5353,
    )


@pytest.mark.parametrize("value", ["dns.example.org", "192.0.2.53:99999", "192.0.2.53:"])
def test_malformed_nameserver_stops_start_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """A malformed DNS_NAMESERVER stops start-up with one line naming it."""
    monkeypatch.setenv("MAILER_INSTANCE", str(tmp_path))
    monkeypatch.setenv("DNS_NAMESERVER", value)
    with pytest.raises(SystemExit) as stopped:
        create_app()
    assert str(stopped.value) == (
        f"mailer: configuration error: DNS_NAMESERVER must be an IP address with an optional port, "
        f"e.g. 192.0.2.53:53, got {value!r}"
    )
