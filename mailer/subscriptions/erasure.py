"""Erasing a subscriber on request (GDPR Art. 17): every piece of their personal data, in one transaction.

What goes: the subscriber row, its consent log, the address in its deliveries and wherever an
audit entry names it. What stays: each delivery, without address or server reply, so a digest's
counts hold; and a keyed hash of the address (HMAC-SHA256 with SECRET_KEY) so a CSV import cannot
bring the address back. The owner may subscribe again on the public form: that is new consent.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from flask import current_app
from sqlalchemy import case, delete, func, update

from ..extensions import db
from ..models import AuditEntry, ConsentEvent, Delivery, DeliveryStatus, ErasedAddress, Subscriber, utcnow

#: How many hex digits of the hash name an erased subscriber in the audit log and in deliveries.
MARK_SIZE = 12
#: Why a delivery that had not gone out when its subscriber was erased never will.
NOT_SENT = "not sent: the subscriber's data was erased"


def address_hash(email: str) -> str:
    """The keyed hash an erased address is kept as: HMAC-SHA256 (SECRET_KEY) of it lower-cased, in hex."""
    key = current_app.config["SECRET_KEY"]
    key = key.encode() if isinstance(key, str) else key
    return hmac.new(key, email.strip().lower().encode(), hashlib.sha256).hexdigest()


def erasure_marker(email: str) -> str:
    """What stands for an erased address in the audit log and in deliveries: never the address."""
    return f"erased:{address_hash(email)[:MARK_SIZE]}"


def erased_among(emails: Iterable[str]) -> set[str]:
    """The addresses among ``emails`` that were erased (case ignored), in one query."""
    by_hash = {address_hash(email): email for email in emails}
    if not by_hash:
        return set()
    found = db.session.execute(db.select(ErasedAddress.hash).where(ErasedAddress.hash.in_(list(by_hash)))).scalars()
    return {by_hash[digest] for digest in found}


def is_erased(email: str) -> bool:
    """True when ``email`` was erased on its owner's request (and so must not be imported or added)."""
    return bool(erased_among([email]))


def erase_subscriber(subscriber: Subscriber, actor: str, ip: str | None) -> str | None:
    """Erase the subscriber's personal data and audit it as done by ``actor``, in one commit.

    Returns the marker the audit log names the erasure by, or None when another request erased
    the subscriber first (then nothing changed).
    """
    subscriber_id, email, marker = subscriber.id, subscriber.email, erasure_marker(subscriber.email)
    kept = _anonymise_deliveries(subscriber_id, marker)
    if db.session.execute(delete(Subscriber).where(Subscriber.id == subscriber_id)).rowcount != 1:
        db.session.rollback()
        return None
    # PostgreSQL deletes the consent events with their subscriber (ON DELETE CASCADE); SQLite does not
    # enforce foreign keys here, so they are deleted by name. Both triggers allow it now it is gone.
    db.session.execute(delete(ConsentEvent).where(ConsentEvent.subscriber_id == subscriber_id))
    db.session.execute(update(AuditEntry).where(func.lower(AuditEntry.target) == email.lower()).values(target=marker))
    _remember(email)
    db.session.add(
        AuditEntry(actor=actor, action="subscriber.erase", target=marker, ip=ip, detail={"deliveries_kept": kept})
    )
    db.session.commit()
    return marker


def _anonymise_deliveries(subscriber_id: int, marker: str) -> int:
    """Detach the subscriber's deliveries and take the address out of them; count them.

    One not sent yet is skipped: nobody is left to send it to (and it must not keep its digest going).
    """
    waiting = Delivery.status.in_((DeliveryStatus.QUEUED, DeliveryStatus.SENDING))
    return db.session.execute(
        update(Delivery)
        .where(Delivery.subscriber_id == subscriber_id)
        .values(
            subscriber_id=None,
            email=marker,
            # A server's reply often quotes the address.
            last_smtp_reply=case((waiting, NOT_SENT), else_=None),
            status=case((waiting, DeliveryStatus.SKIPPED.value), else_=Delivery.status),
            updated_at=utcnow(),
        )
    ).rowcount


def _remember(email: str) -> None:
    """Keep the address's hash (once: an address may be erased, subscribe again and be erased again)."""
    digest = address_hash(email)
    known = db.session.execute(db.select(ErasedAddress).where(ErasedAddress.hash == digest)).scalar_one_or_none()
    if known is None:
        db.session.add(ErasedAddress(hash=digest, erased_at=utcnow()))
    else:
        known.erased_at = utcnow()
