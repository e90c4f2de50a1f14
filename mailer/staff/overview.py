"""What the console's dashboard shows: recent digests with their delivery counts, content and audience."""

from __future__ import annotations

from sqlalchemy import func

from ..extensions import db
from ..models import Delivery, Digest, Meeting, NewsItem, Project, Subscriber

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
