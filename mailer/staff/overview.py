"""What the console's dashboard shows: recent digests with their delivery counts, content, audience and charts."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from markupsafe import Markup
from sqlalchemy import func

from ..extensions import db
from ..models import TOPIC_LABELS, Delivery, Digest, Meeting, NewsItem, Project, Subscriber, utcnow
from . import svg
from .charts import UNSUBSCRIBE_WINDOW, WEEKS, digest_outcomes, topic_audience, weekly_audience

#: Digests listed on the dashboard.
RECENT_DIGESTS = 20


def recent_digests(limit: int = RECENT_DIGESTS) -> tuple[list[Digest], dict[int, dict[str, int]]]:
    """The newest digests and, for each, its deliveries counted by status."""
    digests = list(db.session.execute(db.select(Digest).order_by(Digest.id.desc()).limit(limit)).scalars())
    counts: dict[int, dict[str, int]] = {d.id: {} for d in digests}
    rows = db.session.execute(
        db.select(Delivery.digest_id, Delivery.status, func.count())
        .where(Delivery.digest_id.in_(counts))
        .group_by(Delivery.digest_id, Delivery.status)
    )
    for digest_id, status, count in rows:
        counts[digest_id][status] = count
    return digests, counts


def content_totals() -> dict[str, int]:
    """How many meetings, projects and news items there are."""
    return {
        topic: db.session.scalar(db.select(func.count()).select_from(model)) or 0
        for topic, model in (("meetings", Meeting), ("projects", Project), ("news", NewsItem))
    }


def audience() -> dict[str, int]:
    """Subscribers counted by status."""
    return dict(db.session.execute(db.select(Subscriber.status, func.count()).group_by(Subscriber.status)).all())


#: How long each process reuses the dashboard's audience counts and charts.
CACHE_SECONDS = 60


@dataclass(frozen=True)
class Chart:
    """One chart: its drawing (None while there is nothing to draw) and the same figures as a table."""

    name: str
    title: str
    definition: str
    svg: Markup | None
    columns: tuple[str, ...]
    rows: list[tuple[str | int, ...]]


@dataclass(frozen=True)
class Figures:
    """The dashboard's aggregates and when they were computed."""

    computed_at: datetime
    audience: dict[str, int]
    charts: dict[str, Chart]


def dashboard_figures() -> Figures:
    """The audience counts and the charts, computed at most once every CACHE_SECONDS by this process."""
    cache = current_app.extensions.setdefault("dashboard_figures", {})
    cached = cache.get("figures")
    if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
        return cached[1]
    charts = (audience_chart(), topics_chart(), digests_chart())
    figures = Figures(utcnow(), audience(), {chart.name: chart for chart in charts})
    cache["figures"] = (time.monotonic(), figures)
    return figures


def audience_chart() -> Chart:
    """Confirmed subscribers at the end of each of the last weeks, with the joins and leaves of each."""
    weeks = weekly_audience()
    rows = [(w.start.isoformat(), w.confirmed, w.joins, w.leaves) for w in weeks]
    drawing = None
    if any(w.confirmed or w.joins or w.leaves for w in weeks):
        labels = [f"{w.start.day} {w.start:%b}" for w in weeks]
        desc = (
            f"Confirmed subscribers went from {svg.number(weeks[0].confirmed)} in the week of {weeks[0].start} "
            f"to {svg.number(weeks[-1].confirmed)} in the week of {weeks[-1].start}; over these {len(weeks)} weeks "
            f"{svg.number(sum(w.joins for w in weeks))} joined and {svg.number(sum(w.leaves for w in weeks))} left."
        )
        drawing = svg.line_over_bars(
            "audience", f"Confirmed subscribers, last {len(weeks)} weeks", desc, labels,
            svg.Series("Confirmed", svg.BLUE, [w.confirmed for w in weeks]),
            svg.Series("Joined", svg.GREEN, [w.joins for w in weeks]),
            svg.Series("Left", svg.VERMILLION, [w.leaves for w in weeks]),
            "Week starting Monday (UTC)",
        )  # fmt: skip
    definition = (
        f"Weeks start on Monday 00:00 UTC; the last {WEEKS} weeks, this one last. Joined: confirmed that week. "
        "Left: unsubscribed or suppressed that week after having confirmed. Read from each subscriber's current "
        "state, so someone who left and came back counts as neither."
    )
    columns = ("Week starting", "Confirmed at the end", "Joined", "Left")
    return Chart("audience", "Confirmed subscribers over time", definition, drawing, columns, rows)


def topics_chart() -> Chart:
    """Confirmed subscribers per topic."""
    per_topic = topic_audience()
    rows = [(TOPIC_LABELS[name], count) for name, count in per_topic.items()]
    drawing = None
    if any(count for _, count in rows):
        desc = "; ".join(f"{label}: {svg.number(count)}" for label, count in rows) + " confirmed subscribers."
        drawing = svg.horizontal_bars("topics", "Audience per topic", desc, rows, svg.BLUE, "Confirmed subscribers")
    definition = "Confirmed subscribers who chose each topic; someone with two topics counts under both."
    return Chart("topics", "Audience per topic", definition, drawing, ("Topic", "Confirmed subscribers"), rows)


def digests_chart() -> Chart:
    """What became of the deliveries of the latest digests, and who unsubscribed soon after each."""
    outcomes = digest_outcomes()
    rows = [(o.label, o.subject, o.went_out.date().isoformat(), o.sent, o.failed, o.bounced, o.unsubscribed)
            for o in outcomes]  # fmt: skip
    drawing = None
    if outcomes:
        desc = (
            f"The {len(outcomes)} latest digests, from {outcomes[0].label} to {outcomes[-1].label}: "
            f"{svg.number(sum(o.sent for o in outcomes))} delivered, {svg.number(sum(o.failed for o in outcomes))} "
            f"failed, {svg.number(sum(o.bounced for o in outcomes))} bounced, and "
            f"{svg.number(sum(o.unsubscribed for o in outcomes))} unsubscribed within {UNSUBSCRIBE_WINDOW.days} days."
        )
        days = UNSUBSCRIBE_WINDOW.days
        series = (
            svg.Series("Delivered", svg.BLUE, [o.sent - o.unsubscribed for o in outcomes]),
            svg.Series(f"Unsubscribed ≤ {days} days", svg.ORANGE, [o.unsubscribed for o in outcomes]),
            svg.Series("Bounced", svg.PINK, [o.bounced for o in outcomes]),
            svg.Series("Failed", svg.VERMILLION, [o.failed for o in outcomes]),
        )
        labels = [o.label for o in outcomes]
        drawing = svg.stacked_columns("digests", "Deliveries per digest", desc, labels, series, "Digest")
    definition = (
        "Real digests that went out (not test sends or meeting reminders), newest on the right. Sent, failed, "
        "bounced: deliveries by status. Unsubscribed: readers it was sent to who unsubscribed within "
        f"{UNSUBSCRIBE_WINDOW.days} days after it went out (they are part of Sent; the chart shows them apart). "
        "An unsubscribe after two close digests "
        "counts for both."
    )
    columns = ("Digest", "Subject", "Went out", "Sent", "Failed", "Bounced", "Unsubscribed")
    return Chart("digests", "Deliveries per digest", definition, drawing, columns, rows)
