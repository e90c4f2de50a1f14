"""The rules for what comes back: every bounce, complaint and unsubscribe-by-mail, from mail or a webhook.

A ``Notice`` is one event whatever brought it (a DSN read by ``parse``, an ARF report, a
provider's webhook). ``handle`` finds the delivery and subscriber it is about, records it once
(``event_key``: the report's Message-ID or the provider's event id) and acts, in one transaction:

- hard bounce: the delivery becomes ``bounced`` and the address is suppressed;
- soft bounce: counted; an address that soft-bounced on BOUNCE_SOFT_THRESHOLD different days
  within BOUNCE_SOFT_WINDOW days is suppressed (Mailman's bounce score: one point a day at most,
  so one bad night of retries does not suppress anybody);
- complaint: the address is suppressed, consent event ``complaint``;
- unsubscribe by mail: the address that wrote is unsubscribed (consent source ``mailto``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import BounceEvent, BounceKind, Delivery, DeliveryStatus, Subscriber, utcnow
from ..subscriptions.service import Consent, find_subscriber, suppress, unsubscribe_in_transaction
from .verp import DELIVERY, SUBSCRIBER, Tag

#: Sources whose word about an address is trusted (their requests are signed, see webhooks).
SIGNED_SOURCES = ("ses", "postmark", "mailgun", "sendgrid")


@dataclass(frozen=True)
class Notice:
    """One bounce, complaint or unsubscribe request, normalised from whatever reported it."""

    kind: BounceKind
    #: What reported it: "dsn", "arf", "mail", "mailto", "ses", "postmark", "mailgun", "sendgrid".
    source: str
    event_key: str | None = None
    tag: Tag | None = None
    message_id: str | None = None
    address: str | None = None
    status: str | None = None
    diagnostic: str | None = None


def handle(notice: Notice) -> str:
    """Record and act on ``notice``; return what happened (for logs and the CLI).

    "duplicate" (seen before), "unmatched" (about nobody we know), else the action taken.
    """
    delivery, subscriber = _find(notice)
    if subscriber is None and delivery is None:
        current_app.logger.info("bounce about nobody we know: %s", notice)
        return "unmatched"
    event = BounceEvent(
        kind=notice.kind.value,
        source=notice.source[:16],
        event_key=(notice.event_key or None) and notice.event_key[:255],
        subscriber_id=subscriber.id if subscriber else None,
        delivery_id=delivery.id if delivery else None,
        digest_id=delivery.digest_id if delivery else None,
        status=(notice.status or None) and notice.status[:16],
        diagnostic=(notice.diagnostic or None) and notice.diagnostic[:2000],
    )
    db.session.add(event)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        return "duplicate"
    action = _act(notice, delivery, subscriber)
    db.session.commit()
    return action


def _act(notice: Notice, delivery: Delivery | None, subscriber: Subscriber | None) -> str:
    """Change the delivery and subscriber as the notice's kind calls for."""
    reason = " ".join(x for x in (notice.status, notice.diagnostic) if x) or notice.kind.value
    detail = {"via": notice.source, "status": notice.status, "diagnostic": (notice.diagnostic or "")[:500]}
    consent = Consent(source="bounce" if notice.kind in (BounceKind.HARD, BounceKind.SOFT) else notice.source)
    if notice.kind is BounceKind.HARD:
        if delivery is not None and delivery.status == DeliveryStatus.SENT.value:
            delivery.status = DeliveryStatus.BOUNCED.value
            delivery.last_smtp_reply = reason[:2000]
        if subscriber is not None and suppress(subscriber, reason, consent, detail):
            return "suppressed"
        return "recorded"
    if notice.kind is BounceKind.SOFT:
        threshold = int(current_app.config["BOUNCE_SOFT_THRESHOLD"])
        if subscriber is None or _soft_days(subscriber) < threshold:
            return "counted"
        return (
            "suppressed"
            if suppress(subscriber, f"soft bounces on {threshold} days; last: {reason}", consent, detail)
            else "counted"
        )
    if subscriber is None:
        return "recorded"
    if notice.kind is BounceKind.COMPLAINT:
        return "suppressed" if suppress(subscriber, reason, consent, detail, event="complaint") else "recorded"
    return "unsubscribed" if unsubscribe_in_transaction(subscriber, consent) else "recorded"


def _soft_days(subscriber: Subscriber) -> int:
    """On how many different days the address soft-bounced within BOUNCE_SOFT_WINDOW days (this one included)."""
    since = utcnow() - timedelta(days=int(current_app.config["BOUNCE_SOFT_WINDOW"]))
    stamps = db.session.execute(
        db.select(BounceEvent.received_at).where(
            BounceEvent.subscriber_id == subscriber.id,
            BounceEvent.kind == BounceKind.SOFT.value,
            BounceEvent.received_at >= since,
        )
    ).scalars()
    return len({stamp.date() for stamp in stamps})


def _find(notice: Notice) -> tuple[Delivery | None, Subscriber | None]:
    """The delivery and the subscriber a notice is about, most trustworthy clue first.

    An unsubscribe by mail is about the address that wrote, nothing else. A bounce: the VERP tag
    (signed by us), then our Message-ID it quotes (unguessable), then, from a signed webhook only,
    the failed recipient's address.
    """
    if notice.kind is BounceKind.UNSUBSCRIBE:
        return None, _by_address(notice.address)
    delivery: Delivery | None = None
    if notice.tag is not None and notice.tag.kind == DELIVERY:
        delivery = db.session.get(Delivery, notice.tag.id)
    elif notice.tag is not None and notice.tag.kind == SUBSCRIBER:
        return None, db.session.get(Subscriber, notice.tag.id)
    if delivery is None and notice.message_id:
        bare = notice.message_id.strip().strip("<>")
        delivery = db.session.execute(
            db.select(Delivery).where(Delivery.message_id.in_((f"<{bare}>", bare))).limit(1)
        ).scalar_one_or_none()
    if delivery is not None and delivery.subscriber_id is not None:
        return delivery, db.session.get(Subscriber, delivery.subscriber_id)
    # A bare address is trusted only from a provider's signed webhook: anyone can write a bounce
    # naming somebody else's address, but not one carrying our signed tag or our Message-ID.
    return delivery, _by_address(notice.address) if notice.source in SIGNED_SOURCES else None


def _by_address(address: str | None) -> Subscriber | None:
    """The subscriber with this address, regardless of case."""
    return find_subscriber(address.strip()) if address and "@" in address else None
