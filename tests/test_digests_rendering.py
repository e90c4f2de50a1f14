"""The digest email against golden files, and the public archive pages and Atom feed."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path
from xml.etree import ElementTree

from flask import Flask
from flask.testing import FlaskClient

from mailer.digests.compose import render_content
from mailer.extensions import db
from mailer.main.cache import VERSION_TTL
from mailer.models import ALL_TOPICS, Digest
from mailer.sending.claims import finish_if_done
from tests.data import meeting

GOLDEN = Path(__file__).parent / "golden"


def _meeting(**overrides: object) -> dict[str, object]:
    """A meeting as a digest snapshots it: every field present."""
    return meeting(**{"summary": None, "link": None, "demo": False, **overrides})


ATOM = "{http://www.w3.org/2005/Atom}"
CONTENT = {
    "meetings": [  # out of order: the digest puts upcoming ones first (soonest first), then the past (latest first)
        _meeting(summary="Held alongside SOM1.", link="https://www.apec.org/", demo=True),
        _meeting(slug="smemm-29", title="29th SME Ministerial Meeting", kind="ministerial", number=29,
                start_date="2023-08-21", end_date="2023-08-21", city="Seattle", economy="United States"),
        _meeting(slug="smewg-60", title="60th SMEWG Meeting", number=60, start_date="2027-08-09",
                end_date="2027-08-10", city=None, economy="China", status="upcoming"),
        _meeting(slug="smewg-59", title="59th SMEWG Meeting", number=59, start_date="2026-11-01",
                end_date="2026-11-02", city="Incheon", economy="Korea", status="upcoming"),
    ],
    "projects": [
        {"slug": "toolkit", "title": "Digital trade toolkit", "reference": "SME 01 2023", "status": "implementing",
         "funding_source": "APEC-funded", "year": 2023, "summary": None, "link": None, "demo": False},
    ],
    "news": [
        {"slug": "nine", "title": "Nine projects & four more", "published_on": "2023-12-15",
         "body": "Nine are under way.\n\nFour more were endorsed <in 2023>.", "demo": False},
    ],
}  # fmt: skip


def _normalised(text: str, base_url: str) -> str:
    """The rendered part with its volatile values (base URL, digest id) replaced."""
    return re.sub(r"/archive/\d+", "/archive/ID", text.replace(base_url, "https://mailer.example"))


def _check_golden(name: str, actual: str) -> None:
    """Compare with tests/golden/NAME; UPDATE_GOLDEN=1 rewrites the file instead (review the diff by eye)."""
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(actual)
    assert actual == path.read_text(), f"{name} changed; rerun with UPDATE_GOLDEN=1 and review the diff"


def test_digest_email_matches_golden_files(app: Flask) -> None:
    """One rendered digest (all topics), text and HTML, equals the reviewed golden copies."""
    with app.app_context():
        when = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
        subject, rendered = render_content(CONTENT, ALL_TOPICS, when, app.config["BASE_URL"] + "/archive/7")
    assert subject == "SMEWG News (demo) — November 2026: 4 meetings, 1 project, 1 news item"
    _check_golden("digest.txt", _normalised(rendered.text, app.config["BASE_URL"]))
    _check_golden("digest.html", _normalised(rendered.html, app.config["BASE_URL"]))
    assert '<html lang="en"' in rendered.html
    assert "<img" not in rendered.html
    assert re.search(r'<h2 style="[^"]*color: #0b5cad', rendered.html), "CSS is inlined"
    assert "@media (max-width: 620px)" in rendered.html
    assert "@media (prefers-color-scheme: dark)" in rendered.html
    assert '<!--[if mso]><table role="presentation" width="600"' in rendered.html
    assert 'class="container" role="presentation"' in rendered.html
    assert "Four more were endorsed &lt;in 2023&gt;." in rendered.html


def test_meetings_come_upcoming_first_and_past_ones_have_no_calendar_link(app: Flask) -> None:
    """Upcoming meetings soonest first, then past ones latest first; only upcoming ones link their .ics (both parts)."""
    with app.app_context():
        when = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
        _, rendered = render_content({"meetings": CONTENT["meetings"]}, ALL_TOPICS, when, "https://x.example/a")
    order = ["59th SMEWG Meeting", "60th SMEWG Meeting", "58th SMEWG Meeting", "29th SME Ministerial Meeting"]
    for part in (rendered.text, rendered.html):
        assert sorted(order, key=part.index) == order
        assert "/meetings/smewg-59.ics" in part
        assert "/meetings/smewg-60.ics" in part
        assert not re.search(r"/meetings/[\w-]+\.ics", part[part.index("58th SMEWG Meeting") :])
        assert "webcal://" in part  # the calendar of all meetings, offered in every digest
    assert rendered.text.count("Add to calendar") == rendered.html.count("Add to calendar") == 2


def test_digest_footer_and_text_lines(app: Flask) -> None:
    """The postal address closes both parts; text lines are at most 78 characters unless a line is one URL."""
    long_news = {**CONTENT["news"][0], "title": "A title " * 12, "body": "A long paragraph, " * 30}
    with app.app_context():
        app.config["ORG_POSTAL_ADDRESS"] = "APEC Secretariat\n35 Heng Mui Keng Terrace\nSingapore 119616"
        archive = app.config["BASE_URL"] + "/archive/7?t=" + "token" * 20
        _, rendered = render_content({**CONTENT, "news": [long_news]}, ALL_TOPICS, datetime.now(UTC), archive)
    assert "SMEWG News (demo)\nAPEC Secretariat\n35 Heng Mui Keng Terrace\nSingapore 119616\n" in rendered.text
    assert "APEC Secretariat<br>35 Heng Mui Keng Terrace<br>Singapore 119616</p>" in rendered.html
    lines = rendered.text.split("\n")
    assert archive in [line.strip() for line in lines]
    for line in lines:
        assert len(line) <= 78 or re.fullmatch(r"\s*https?://\S+", line), line


def _digest(status: str, is_test: bool = False) -> int:
    """A digest row in ``status`` carrying CONTENT; a real one is numbered with its id, so both name its page."""
    now = datetime.now(UTC)
    digest = Digest(
        subject=f"Digest {status}{' test' if is_test else ''}", status=status, is_test=is_test, until=now,
        content=CONTENT, topics=ALL_TOPICS, sent_at=now if status == "sent" else None,
    )  # fmt: skip
    db.session.add(digest)
    db.session.flush()
    digest.number = None if is_test else digest.id
    db.session.commit()
    return digest.id


def test_archive_lists_only_sent_public_digests(app: Flask, client: FlaskClient) -> None:
    """The list and feed hold sent non-test digests; a page shows only digests that went or are going out."""
    with app.app_context():
        sent, queued = _digest("sent"), _digest("queued")
        scheduled, test = _digest("scheduled"), _digest("sent", is_test=True)
    index = client.get("/archive/").get_data(as_text=True)
    assert "Digest sent" in index
    assert "Digest queued" not in index
    assert "Digest sent test" not in index
    page = client.get(f"/archive/{sent}").get_data(as_text=True)
    assert "58th SMEWG Meeting" in page
    assert "4–5 March 2024" in page
    assert "/meetings/smewg-58.ics" in page
    assert client.get(f"/archive/{queued}").status_code == 200
    too_big = ("/archive/2147483648", "/archive/99999999999999999999", f"/archive/{test}?t=" + "x" * 5000)
    for hidden in (f"/archive/{scheduled}", f"/archive/{test}", "/archive/999999", "/archive/abc", *too_big):
        assert client.get(hidden).status_code == 404, hidden
    response = client.get("/archive/feed.atom")
    assert response.mimetype == "application/atom+xml"
    feed = ElementTree.fromstring(response.data)
    (entry,) = feed.findall(f"{ATOM}entry")
    assert entry.findtext(f"{ATOM}title") == "Digest sent"
    assert entry.findtext(f"{ATOM}id").endswith(f"/archive/{sent}")
    assert "Nine projects & four more" in entry.findtext(f"{ATOM}summary")


def test_archive_and_feed_list_a_digest_once_it_is_sent(app: Flask, client: FlaskClient) -> None:
    """The cached list and feed change when a digest is sent: here at once, by the worker within VERSION_TTL."""
    with app.app_context():
        _digest("sent")
        queued, going = _digest("queued"), _digest("sending")
    assert "Digest queued" not in client.get("/archive/").get_data(as_text=True)
    assert len(ElementTree.fromstring(client.get("/archive/feed.atom").data).findall(f"{ATOM}entry")) == 1
    with app.app_context():
        digest = db.session.get(Digest, queued)
        digest.status, digest.sent_at = "sent", datetime.now(UTC)
        db.session.commit()
    assert "Digest queued" in client.get("/archive/").get_data(as_text=True)
    assert len(ElementTree.fromstring(client.get("/archive/feed.atom").data).findall(f"{ATOM}entry")) == 2
    # The send engine finishes a digest in the worker process, through its own autocommit connection.
    with app.app_context(), db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        assert finish_if_done(conn, going, datetime.now(UTC))
    app.extensions["public_pages"].checked_at -= VERSION_TTL  # a second later
    assert "Digest sending" in client.get("/archive/").get_data(as_text=True)
    assert len(ElementTree.fromstring(client.get("/archive/feed.atom").data).findall(f"{ATOM}entry")) == 3
