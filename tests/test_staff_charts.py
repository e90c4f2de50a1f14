"""The dashboard charts: figures from known rows, their SVG and tables, CSV downloads, and an empty database."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from mailer.extensions import db
from mailer.models import ConsentEvent, Delivery, Digest, Subscriber
from mailer.staff import overview, svg
from mailer.staff.charts import digest_outcomes, topic_audience, weekly_audience
from tests.conftest import AuthActions

SVG = "{http://www.w3.org/2000/svg}"
#: A Wednesday: the 26 weeks run from Monday 1 June to the week of Monday 23 November 2026.
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
WENT_OUT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def at(day: str) -> datetime:
    """Noon UTC of an ISO date, or the exact ISO time given."""
    moment = datetime.fromisoformat(day if "T" in day else day + "T12:00")
    return moment.replace(tzinfo=UTC)


def _subscriber(email: str, status: str, topics: int = 7, **stamps: datetime | None) -> Subscriber:
    """A subscriber row as it stands now, with the given timestamps."""
    subscriber = Subscriber(email=email, status=status, topics=topics, **stamps)
    db.session.add(subscriber)
    db.session.flush()
    return subscriber


def _audience_rows() -> None:
    """Subscribers whose joins and leaves fall in known weeks (week 0 starts 2026-06-01)."""
    _subscriber("monday@example.org", "confirmed", confirmed_at=at("2026-11-23T00:00"))  # join, week 25
    _subscriber("b@example.org", "confirmed", confirmed_at=at("2026-11-16"))  # join, week 24
    _subscriber("c@example.org", "unsubscribed", confirmed_at=at("2026-11-16"), unsubscribed_at=at("2026-11-24"))
    _subscriber("d@example.org", "suppressed", confirmed_at=at("2025-01-01"), suppressed_at=at("2026-06-02"))
    _subscriber("old@example.org", "confirmed", confirmed_at=at("2024-03-01"))
    _subscriber("pending@example.org", "pending")
    # Never confirmed, so a bounce on the confirmation email is no leave; pending again, so no join.
    _subscriber("bounced@example.org", "suppressed", suppressed_at=at("2026-11-24"))
    _subscriber("again@example.org", "pending", confirmed_at=at("2026-08-10"))
    # A clock ahead: a confirmation stamped after this week counts now, so it is undone from every week.
    _subscriber("ahead@example.org", "confirmed", confirmed_at=at("2026-12-10"))
    db.session.commit()


def test_weekly_audience_from_known_rows(app: Flask) -> None:
    """Week starts, joins, leaves and the confirmed totals match the hand count."""
    with app.app_context():
        _audience_rows()
        weeks = weekly_audience(now=NOW)
    assert len(weeks) == 26
    assert weeks[0].start == date(2026, 6, 1) and weeks[-1].start == date(2026, 11, 23)
    assert all(w.start.weekday() == 0 for w in weeks)
    joins = {i: w.joins for i, w in enumerate(weeks) if w.joins}
    leaves = {i: w.leaves for i, w in enumerate(weeks) if w.leaves}
    assert joins == {24: 2, 25: 1}
    assert leaves == {0: 1, 25: 1}
    # Confirmed now: monday, b, old, ahead (4); minus the later one: 3 at the end of this week.
    assert [w.confirmed for w in weeks] == [1] * 24 + [3, 3]


def test_topic_audience_counts_each_chosen_topic(app: Flask) -> None:
    """A confirmed subscriber counts under every topic in their mask; others do not count."""
    with app.app_context():
        for i, topics in enumerate((1, 3, 7, 4, 0)):
            _subscriber(f"t{i}@example.org", "confirmed", topics)
        _subscriber("gone@example.org", "unsubscribed", 7)
        _subscriber("waiting@example.org", "pending", 7)
        db.session.commit()
        assert topic_audience() == {"meetings": 3, "projects": 2, "news": 2}


def _digest(number: int | None, went_out: datetime | None, is_test: bool = False, subject: str = "News") -> Digest:
    """A digest that went out at ``went_out`` (None: still scheduled)."""
    digest = Digest(subject=subject, number=number, until=WENT_OUT, content={}, topics=7, is_test=is_test,
                    status="sent" if went_out else "scheduled", started_at=went_out, sent_at=went_out)  # fmt: skip
    db.session.add(digest)
    db.session.flush()
    return digest


def _deliver(digest: Digest, subscriber: Subscriber, status: str) -> None:
    """One delivery of ``digest`` to ``subscriber``."""
    db.session.add(Delivery(digest_id=digest.id, subscriber_id=subscriber.id, email=subscriber.email, topics=7,
                            status=status))  # fmt: skip


def _unsubscribed(subscriber: Subscriber, moment: datetime) -> None:
    """An unsubscribe in the consent log."""
    db.session.add(ConsentEvent(subscriber_id=subscriber.id, event="unsubscribe", occurred_at=moment, source="link"))


def _digest_rows() -> None:
    """Two real digests, a test send and a scheduled one, with deliveries and unsubscribes around them."""
    people = [_subscriber(f"r{i}@example.org", "unsubscribed") for i in range(6)]
    first, second = _digest(1, WENT_OUT, subject="=cmd|' /C calc'!A0"), _digest(2, WENT_OUT + timedelta(days=3))
    for person, status in zip(people, ("sent", "sent", "failed", "bounced", "sent"), strict=False):
        _deliver(first, person, status)
    _deliver(second, people[0], "sent")
    _deliver(second, people[1], "sent")
    test = _digest(None, WENT_OUT, is_test=True)
    _deliver(test, people[5], "sent")
    _digest(None, None)
    _unsubscribed(people[0], WENT_OUT + timedelta(days=1))  # first only: before the second went out
    _unsubscribed(people[0], WENT_OUT + timedelta(days=2))  # the same person again counts once
    _unsubscribed(people[1], WENT_OUT + timedelta(days=8))  # after the first's 7 days, within the second's
    _unsubscribed(people[2], WENT_OUT + timedelta(days=1))  # their delivery failed: not a reader
    _unsubscribed(people[4], WENT_OUT - timedelta(hours=1))  # before the digest went out
    _unsubscribed(people[5], WENT_OUT + timedelta(days=1))  # only had the test send
    db.session.commit()


def test_digest_outcomes_from_known_rows(app: Flask) -> None:
    """Per real digest: deliveries by status and the readers who unsubscribed within 7 days after."""
    with app.app_context():
        _digest_rows()
        outcomes = digest_outcomes()
    assert [o.label for o in outcomes] == ["#1", "#2"]
    assert [(o.sent, o.failed, o.bounced, o.unsubscribed) for o in outcomes] == [(3, 1, 1, 1), (2, 0, 0, 1)]


def _svg_root(markup: str) -> ET.Element:
    """The chart's SVG element, parsed."""
    return ET.fromstring(markup)


def _bars(root: ET.Element, series: str, size: str = "height") -> list[float]:
    """The heights (or widths) of one series' bars, in order."""
    return [float(r.get(size, "")) for r in root.iter(f"{SVG}rect") if r.get("data-series") == series]


def test_svg_has_title_desc_and_one_bar_per_value_at_scale() -> None:
    """Each value is one bar; heights are proportional to the values; text is escaped."""
    markup = svg.stacked_columns(
        "d", "Deliveries <per> digest", "A & B", ["#1", "#2", "#3"],
        [svg.Series("Sent", svg.BLUE, [30, 0, 15]), svg.Series("Failed", svg.VERMILLION, [5, 10, 0])], "Digest",
    )  # fmt: skip
    root = _svg_root(markup)
    assert root.get("role") == "img" and root.get("viewBox", "").startswith("0 0 ")
    assert root.find(f"{SVG}title").text == "Deliveries <per> digest"
    assert root.find(f"{SVG}desc").text == "A & B"
    sent, failed = _bars(root, "Sent"), _bars(root, "Failed")
    scale = 160 / svg.nice_ceiling(35)  # the tallest column (35) under a top of 40
    assert sent == [round(v * scale, 2) for v in (30, 0, 15)]
    assert failed == [round(v * scale, 2) for v in (5, 10, 0)]
    assert "style=" not in markup
    assert markup == svg.stacked_columns(
        "d", "Deliveries <per> digest", "A & B", ["#1", "#2", "#3"],
        [svg.Series("Sent", svg.BLUE, [30, 0, 15]), svg.Series("Failed", svg.VERMILLION, [5, 10, 0])], "Digest",
    )  # fmt: skip


def test_nice_ceiling() -> None:
    """Axis tops are round, at least the value, and halve to a whole number (the middle grid line)."""
    assert [svg.nice_ceiling(v) for v in (0, 1, 3, 5, 9, 10, 11, 150, 3500, 1_000_001)] == [
        2, 2, 4, 6, 10, 10, 12, 160, 4000, 1_200_000,
    ]  # fmt: skip


def _chart(page: str, name: str) -> ET.Element:
    """The named chart's SVG out of the dashboard page."""
    start = page.index('<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 400')
    while f'id="chart-{name}-title"' not in page[start : page.index("</svg>", start)]:
        start = page.index("<svg ", start + 1)
    return _svg_root(page[start : page.index("</svg>", start) + len("</svg>")])


def test_dashboard_draws_the_charts_with_their_tables(app: Flask, auth: AuthActions) -> None:
    """The page holds the three charts, bars at the right heights, and the same numbers in tables."""
    with app.app_context():
        _digest_rows()
        for i, topics in enumerate((1, 3, 7)):
            _subscriber(f"t{i}@example.org", "confirmed", topics, confirmed_at=at("2026-01-05"))
        db.session.commit()
    page = auth.login().get("/staff/").get_data(as_text=True)
    assert "No data yet" not in page and " style=" not in page
    topics = _chart(page, "topics")
    assert topics.find(f"{SVG}title").text == "Audience per topic"
    assert [_bars(topics, name, "width")[0] for name in ("Meetings", "Projects", "News")] == [
        round(v / svg.nice_ceiling(3) * (svg.PLOT_WIDTH - 56), 2) for v in (3, 2, 1)
    ]
    digests = _chart(page, "digests")
    assert len(_bars(digests, "Delivered")) == 2 and len(_bars(digests, "Failed")) == 2
    audience = _chart(page, "audience")
    assert len(audience.findall(f"{SVG}circle")) == 26 and len(_bars(audience, "Joined")) == 26
    assert '<th scope="row">Meetings</th><td>3</td>' in page
    assert '<th scope="row">#1</th><td>=cmd|&#39; /C calc&#39;!A0</td><td>2026-11-02</td><td>3</td><td>1</td>' in page
    assert "at most once every 60 seconds" in page


def test_chart_csv_needs_sign_in_and_defuses_formulas(app: Flask, client: FlaskClient, auth: AuthActions) -> None:
    """Anonymous: to the sign-in page. Signed in: the table's numbers, a formula in a label made text."""
    with app.app_context():
        _digest_rows()
    response = client.get("/staff/dashboard/digests.csv")
    assert response.status_code == 302 and response.headers["Location"].startswith("/staff/login")
    auth.login()
    response = client.get("/staff/dashboard/digests.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == ["Digest", "Subject", "Went out", "Sent", "Failed", "Bounced", "Unsubscribed"]
    assert rows[1] == ["#1", "'=cmd|' /C calc'!A0", "2026-11-02", "3", "1", "1", "1"]
    assert rows[2] == ["#2", "News", "2026-11-05", "2", "0", "0", "1"]
    assert client.get("/staff/dashboard/nothing.csv").status_code == 404


def test_empty_database_says_no_data_yet(app: Flask, auth: AuthActions) -> None:
    """No subscribers and no digests: each chart says so, and its CSV is a header."""
    client = auth.login()
    page = client.get("/staff/").get_data(as_text=True)
    assert page.count("No data yet.") == 3
    assert "<svg" not in page
    for name in ("audience", "topics", "digests"):
        response = client.get(f"/staff/dashboard/{name}.csv")
        assert response.status_code == 200
        rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
        assert len(rows) == (27 if name == "audience" else 4 if name == "topics" else 1)


def test_figures_are_reused_for_a_minute(app: Flask, auth: AuthActions, monkeypatch: pytest.MonkeyPatch) -> None:
    """A new subscriber shows on the dashboard only once the process's cached figures have expired."""
    client = auth.login()
    assert client.get("/staff/").get_data(as_text=True).count("No data yet.") == 3
    with app.app_context():
        _subscriber("new@example.org", "confirmed", 7, confirmed_at=datetime.now(UTC))
        db.session.commit()
    assert client.get("/staff/").get_data(as_text=True).count("No data yet.") == 3
    monkeypatch.setattr(overview, "CACHE_SECONDS", 0)  # as if the minute had passed
    page = client.get("/staff/").get_data(as_text=True)
    assert page.count("No data yet.") == 1  # the digests chart: still none sent
    assert "1 confirmed" in page
