"""The subscription rules: input checks, double opt-in, preferences, unsubscribe, consent log.

Every change of a subscriber's status happens here, in one transaction together with its
consent event. Emails are enqueued only after that transaction committed. State changes
reached through links are conditional UPDATEs, so a double click or two web processes
racing each other change the row once and log one event.
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import MAX_REMINDER_DAYS, AuditEntry, ConsentEvent, Subscriber, SubscriberStatus, Topic, utcnow
from ..text import is_one_line
from ..tokens import TokenExpired, TokenInvalid, read_token
from .erasure import is_erased

MAX_EMAIL = 254
MAX_NAME = 200
#: The longest "how they agreed" kept as consent evidence (the CSV's consent_source column).
MAX_CONSENT_SOURCE = 32
IP_SIZE = ConsentEvent.__table__.c.ip.type.length
USER_AGENT_SIZE = ConsentEvent.__table__.c.user_agent.type.length

#: Shown next to every subscribe form; CONSENT_VERSION names the wording in force.
CONSENT_SENTENCE = (
    "I agree to receive the newsletter about the topics I chose at this address. "
    "I can change my topics or unsubscribe at any time with the link in every email."
)

PENDING = SubscriberStatus.PENDING.value
CONFIRMED = SubscriberStatus.CONFIRMED.value
UNSUBSCRIBED = SubscriberStatus.UNSUBSCRIBED.value
SUPPRESSED = SubscriberStatus.SUPPRESSED.value


class InvalidInput(ValueError):
    """User input that cannot be used; ``field`` names the input, the message says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class LinkError(Exception):
    """A link from an email that cannot be used, and why: the page and its status follow from it.

    ``invalid``: malformed, tampered, another purpose or an unknown subscriber (404);
    ``expired``: a genuine confirmation link past CONFIRM_MAX_AGE (410); ``used``: a
    confirmation link used already or replaced by a newer email (410); ``revoked``: a
    preferences or unsubscribe link issued before the links were revoked (410).
    """

    STATUS = {"invalid": 404, "expired": 410, "used": 410, "revoked": 410}

    def __init__(self, reason: str = "invalid") -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = self.STATUS[reason]


@dataclass(frozen=True)
class Consent:
    """Who asked, from where and through what: recorded with every consent event."""

    source: str
    ip: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True)
class SubscriptionRequest:
    """A checked subscribe request: normalised address, optional name, chosen topics."""

    email: str
    name: str | None
    topics: Topic


# email_validator checks an address's domain (IDNA, UTS-46, per character) on every call, and
# that check is a pure function of the domain and two flags. A list has few domains: remember
# the answers (a refused domain raises, so it is never remembered). An import of 100,000 rows
# spent a quarter of its time here.
_checks = sys.modules["email_validator.validate_email"]
_checks.validate_email_domain_name = lru_cache(maxsize=4096)(_checks.validate_email_domain_name)


def clean_email(raw: object) -> str:
    """Return the normalised address; raise InvalidInput in plain words."""
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidInput("email", "Enter your email address.")
    if "\r" in raw or "\n" in raw:
        raise InvalidInput("email", "The email address must be on one line.")
    if len(raw.strip()) > MAX_EMAIL:
        raise InvalidInput("email", f"The email address is too long (at most {MAX_EMAIL} characters).")
    try:
        checked = validate_email(
            raw.strip(),
            check_deliverability=bool(current_app.config["CHECK_DELIVERABILITY"]),
            allow_smtputf8=False,
            test_environment=False,
        )
    except EmailNotValidError as exc:
        raise InvalidInput("email", f"This is not a valid email address: {exc}") from None
    return checked.normalized


def clean_name(raw: object) -> str | None:
    """Return the trimmed name or None; raise InvalidInput when it is too long or not one line."""
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise InvalidInput("name", "The name must be text.")
    if not is_one_line(raw):
        raise InvalidInput("name", "The name must be on one line.")
    name = raw.strip()
    if len(name) > MAX_NAME:
        raise InvalidInput("name", f"The name is too long (at most {MAX_NAME} characters).")
    return name or None


def clean_topics(raw: object) -> Topic:
    """Return the topic mask for a list of topic names; at least one known topic is required."""
    if not isinstance(raw, (list, tuple)) or not all(isinstance(t, str) for t in raw):
        raise InvalidInput("topics", "Topics must be a list of topic names.")
    try:
        topics = Topic.from_names(list(raw))
    except ValueError:
        raise InvalidInput("topics", f"Choose topics among: {', '.join(Topic.names())}.") from None
    if not topics:
        raise InvalidInput("topics", "Choose at least one topic.")
    return topics


#: The meeting reminders a subscriber may choose, in days before each meeting (None: no reminder).
REMINDER_CHOICES = tuple(days for days in (1, 2, 3, 7, 14) if days <= MAX_REMINDER_DAYS)


def reminder_label(days: int) -> str:
    """``1 day``, ``3 days``, ``1 week``, ``2 weeks``: a lead time as people say it."""
    if days % 7 == 0:
        return "1 week" if days == 7 else f"{days // 7} weeks"
    return "1 day" if days == 1 else f"{days} days"


def clean_reminder_days(raw: object, topics: Topic | None = None) -> int | None:
    """The reminder chosen (days before each meeting) or None; InvalidInput unless it is one of the choices.

    With ``topics`` given, a reminder also needs the meetings topic: reminders are about meetings.
    """
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str) or raw not in {str(days) for days in REMINDER_CHOICES}:
        offered = ", ".join(reminder_label(days) for days in REMINDER_CHOICES)
        raise InvalidInput("reminder_days", f"Choose no reminder or one of: {offered} before each meeting.")
    if topics is not None and not topics & Topic.MEETINGS:
        raise InvalidInput(
            "reminder_days", "Meeting reminders come with the Meetings topic: tick Meetings, or choose no reminder."
        )
    return int(raw)


def find_subscriber(email: str) -> Subscriber | None:
    """The subscriber for ``email`` regardless of case, or None."""
    return db.session.execute(
        db.select(Subscriber).where(func.lower(Subscriber.email) == email.lower())
    ).scalar_one_or_none()


@dataclass(frozen=True)
class Received:
    """A subscribe request as the web accepted it: what was asked, by whom, under which wording, when."""

    request: SubscriptionRequest
    consent: Consent
    version: str
    at: datetime


#: The task that answers subscribe requests, by name: it takes a batch of [subscriber id, email kind] pairs.
ANSWER_TASK = "mailer.subscriptions.send_answers"
CONFIRMATION = "confirmation"
ALREADY_SUBSCRIBED = "already_subscribed"


def record_requests(batch: Sequence[Received]) -> None:
    """Record subscribe requests (the worker drains them from the inbox) in one transaction; then email.

    New addresses become pending; pending and unsubscribed ones get the request's choices and a fresh
    confirmation; confirmed ones get "already subscribed"; suppressed ones nothing. Every request is a
    consent event with the time and wording of the moment it was made. If another process inserted one
    of the addresses meanwhile, the batch is recorded again one request at a time.
    """
    try:
        answers = _record(batch)
    except IntegrityError:
        db.session.rollback()
        answers = [answer for received in batch for answer in _record_alone(received)]
    if answers:
        # Queued by name after the commit: the service never imports its tasks (tasks import the service).
        current_app.extensions["celery"].send_task(ANSWER_TASK, args=[answers])


def _record_alone(received: Received) -> list[list[Any]]:
    """Record one request; a concurrent insert of its address is found on the second attempt."""
    try:
        return _record([received])
    except IntegrityError:
        db.session.rollback()
        return _record([received])


def _record(batch: Sequence[Received]) -> list[list[Any]]:
    """Write the batch and commit; return the [subscriber id, email kind] pairs to answer."""
    wanted = {r.request.email.lower() for r in batch}
    known = {
        s.email.lower(): s
        for s in db.session.execute(db.select(Subscriber).where(func.lower(Subscriber.email).in_(wanted))).scalars()
    }
    answers: list[tuple[Subscriber, str]] = []
    for received in batch:
        req = received.request
        subscriber = known.get(req.email.lower())
        previous = subscriber.status if subscriber else "new"
        if subscriber is None:
            subscriber = known[req.email.lower()] = Subscriber(
                email=req.email, name=req.name, topics=int(req.topics), status=PENDING, confirm_nonce=_nonce()
            )
            db.session.add(subscriber)
        else:
            _renew_pending(subscriber, req)
        detail = {"previous_status": previous, "topics": Topic(req.topics).to_names()}
        _log(subscriber, "subscribe", received.consent, detail, at=received.at, version=received.version)
        if previous == CONFIRMED:
            answers.append((subscriber, ALREADY_SUBSCRIBED))
        elif previous != SUPPRESSED:
            answers.append((subscriber, CONFIRMATION))
    db.session.flush()
    pairs = [[subscriber.id, kind] for subscriber, kind in answers]
    db.session.commit()
    return pairs


def _nonce() -> str:
    """A fresh confirmation nonce: the newest confirmation email is the only one that works."""
    return secrets.token_hex(16)


def _renew_pending(subscriber: Subscriber, req: SubscriptionRequest) -> None:
    """Put the request's choices and a new confirmation nonce on a pending or unsubscribed subscriber.

    The UPDATE runs for every state and leaves confirmed and suppressed subscribers as they are.
    """
    _change(
        subscriber,
        Subscriber.status.in_((PENDING, UNSUBSCRIBED)),
        {
            "status": PENDING,
            "name": req.name,
            "topics": int(req.topics),
            "confirm_nonce": _nonce(),
            "unsubscribed_at": None,
        },
    )


def _log(
    subscriber: Subscriber,
    event: str,
    consent: Consent,
    detail: dict[str, Any] | None = None,
    at: datetime | None = None,
    version: str | None = None,
) -> None:
    """Add one consent event for ``subscriber`` to the session (made now, under today's wording, by default)."""
    db.session.add(
        ConsentEvent(
            subscriber=subscriber,
            event=event,
            occurred_at=at or utcnow(),
            ip=(consent.ip or None) and consent.ip[:IP_SIZE],
            user_agent=(consent.user_agent or None) and consent.user_agent[:USER_AGENT_SIZE],
            consent_version=version or current_app.config["CONSENT_VERSION"],
            source=consent.source,
            detail=detail,
        )
    )


def _payload(purpose: str, token: str, max_age: int | None = None) -> tuple[int, str | int]:
    """The [subscriber_id, value] payload of a link token; raise LinkError when unusable."""
    try:
        payload = read_token(purpose, token, max_age=max_age)
    except TokenExpired:
        raise LinkError("expired") from None
    except TokenInvalid:
        raise LinkError() from None
    if not (isinstance(payload, list) and len(payload) == 2 and type(payload[0]) is int):
        raise LinkError()
    return payload[0], payload[1]


def _subscriber(subscriber_id: int) -> Subscriber:
    """The subscriber a genuine link names; raise LinkError when it no longer exists."""
    subscriber = db.session.get(Subscriber, subscriber_id)
    if subscriber is None:
        raise LinkError()
    return subscriber


def subscriber_to_confirm(token: str) -> tuple[Subscriber, str]:
    """The pending subscriber and nonce a confirmation link is for; raise LinkError otherwise."""
    subscriber_id, nonce = _payload("confirm", token, max_age=int(current_app.config["CONFIRM_MAX_AGE"]))
    subscriber = _subscriber(subscriber_id)
    current = subscriber.confirm_nonce
    if subscriber.status != PENDING or not current or not secrets.compare_digest(current, str(nonce)):
        raise LinkError("used")
    return subscriber, str(nonce)


def subscriber_from_link(purpose: str, token: str) -> Subscriber:
    """The subscriber a preferences ("manage") or "unsubscribe" link is for; raise LinkError."""
    subscriber_id, version = _payload(purpose, token)
    subscriber = _subscriber(subscriber_id)
    if type(version) is not int or version != subscriber.link_version:
        raise LinkError("revoked")
    return subscriber


def _change(subscriber: Subscriber, condition: Any, values: dict[str, Any]) -> bool:
    """UPDATE ``subscriber`` with ``values`` only while ``condition`` holds; True when it did."""
    result = db.session.execute(
        update(Subscriber).where(Subscriber.id == subscriber.id, condition).values(**values, updated_at=utcnow())
    )
    return result.rowcount == 1


def confirm_subscription(token: str, consent: Consent) -> Subscriber:
    """Confirm the subscription a confirmation link is for; the link cannot be used again."""
    subscriber, nonce = subscriber_to_confirm(token)
    changed = _change(
        subscriber,
        (Subscriber.status == PENDING) & (Subscriber.confirm_nonce == nonce),
        {"status": CONFIRMED, "confirm_nonce": None, "confirmed_at": utcnow(), "unsubscribed_at": None},
    )
    if not changed:
        db.session.rollback()
        raise LinkError("used")
    _log(subscriber, "confirm", consent, {"topics": Topic(subscriber.topics).to_names()})
    db.session.commit()
    return subscriber


def can_change_preferences(subscriber: Subscriber) -> bool:
    """Preferences apply to subscribers who are waiting to confirm or confirmed."""
    return subscriber.status in (PENDING, CONFIRMED)


def update_preferences(
    subscriber: Subscriber, name: str | None, topics: Topic, consent: Consent, *, reminder_days: int | None
) -> bool:
    """Change name, topics and meeting reminder and log the change; False when nothing changed."""
    before = {"name": subscriber.name, "topics": Topic(subscriber.topics).to_names(), "days": subscriber.reminder_days}
    after = {"name": name, "topics": Topic(topics).to_names(), "days": reminder_days}
    if before == after or not can_change_preferences(subscriber):
        return False
    subscriber.name = name
    subscriber.topics = int(topics)
    subscriber.reminder_days = reminder_days
    _log(
        subscriber,
        "preferences",
        consent,
        {
            "topics": after["topics"],
            "previous_topics": before["topics"],
            "name_changed": before["name"] != name,
            "reminder_days": reminder_days,
            "previous_reminder_days": before["days"],
        },
    )
    db.session.commit()
    return True


def revoke_links(subscriber: Subscriber, actor: str, ip: str | None) -> None:
    """Void every preferences and unsubscribe link sent so far; the next email carries new ones.

    ``actor`` is "subscriber" when the owner asked on the preferences page, else the staff member.
    """
    _change(subscriber, Subscriber.id == subscriber.id, {"link_version": Subscriber.link_version + 1})
    db.session.add(AuditEntry(actor=actor, action="subscriber.revoke_links", target=subscriber.email, ip=ip))
    db.session.commit()
    db.session.refresh(subscriber)


def unsubscribe_for_owner(subscriber: Subscriber, consent: Consent, actor: str) -> bool:
    """Unsubscribe on the owner's request to staff: change, consent event and audit entry in one commit."""
    changed = _unsubscribe(subscriber, consent)
    if changed:
        db.session.add(AuditEntry(actor=actor, action="subscriber.unsubscribe", target=subscriber.email, ip=consent.ip))
    db.session.commit()
    return changed


def unsubscribe(subscriber: Subscriber, consent: Consent) -> bool:
    """Stop every email to ``subscriber`` at once; False when it was not subscribed (harmless)."""
    changed = _unsubscribe(subscriber, consent)
    db.session.commit()
    return changed


def _unsubscribe(subscriber: Subscriber, consent: Consent) -> bool:
    """The unsubscribe and its consent event, in the caller's transaction."""
    previous = subscriber.status
    changed = _change(
        subscriber,
        Subscriber.status.in_((PENDING, CONFIRMED)),
        {"status": UNSUBSCRIBED, "unsubscribed_at": utcnow(), "confirm_nonce": None},
    )
    if changed:
        _log(subscriber, "unsubscribe", consent, {"previous_status": previous})
    return changed


def can_resubscribe(subscriber: Subscriber) -> bool:
    """The undo applies to an unsubscribed address whose owner had confirmed it before."""
    return subscriber.status == UNSUBSCRIBED and subscriber.confirmed_at is not None


def resubscribe(subscriber: Subscriber, consent: Consent) -> bool:
    """Undo an unsubscribe from the link in an email; False when there was nothing to undo."""
    changed = _change(
        subscriber,
        (Subscriber.status == UNSUBSCRIBED) & Subscriber.confirmed_at.is_not(None),
        {"status": CONFIRMED, "unsubscribed_at": None},
    )
    if changed:
        _log(subscriber, "resubscribe", consent, {"topics": Topic(subscriber.topics).to_names()})
    db.session.commit()
    return changed


def record_hard_bounce(subscriber_id: int, reply: str) -> None:
    """Suppress an address whose server refused our email permanently (5xx)."""
    subscriber = db.session.get(Subscriber, subscriber_id)
    if subscriber is not None:
        suppress(subscriber, reply, Consent(source="bounce"), {"reply": reply[:500]})
    db.session.commit()


def suppress(
    subscriber: Subscriber, reason: str, consent: Consent, detail: dict[str, Any], event: str = "suppress"
) -> bool:
    """Stop every email to an address that bounced or complained, in the caller's transaction; False if it was.

    ``event`` is the consent event logged ("suppress" for a bounce, "complaint" for a complaint).
    """
    previous = subscriber.status
    changed = _change(
        subscriber,
        Subscriber.status != SUPPRESSED,
        {"status": SUPPRESSED, "suppressed_reason": reason[:1000], "suppressed_at": utcnow(), "confirm_nonce": None},
    )
    if changed:
        _log(subscriber, event, consent, {"previous_status": previous, **detail})
    return changed


def unsubscribe_in_transaction(subscriber: Subscriber, consent: Consent) -> bool:
    """The unsubscribe and its consent event, in the caller's transaction (for a request that came by mail)."""
    return _unsubscribe(subscriber, consent)


def lift_suppression(subscriber: Subscriber, actor: str, ip: str | None) -> bool:
    """On the owner's request: an address suppressed after bounces or a complaint may be mailed again.

    It goes back to confirmed if its owner had confirmed it, else to unsubscribed (they subscribe again).
    Consent event "unsuppress" and an audit entry naming ``actor``, in one commit; False if not suppressed.
    """
    status = CONFIRMED if subscriber.confirmed_at is not None else UNSUBSCRIBED
    changed = _change(
        subscriber,
        Subscriber.status == SUPPRESSED,
        {"status": status, "suppressed_reason": None, "suppressed_at": None},
    )
    if changed:
        _log(subscriber, "unsuppress", Consent(source="staff", ip=ip), {"status": status, "by": actor})
        db.session.add(AuditEntry(actor=actor, action="subscriber.unsuppress", target=subscriber.email, ip=ip))
    db.session.commit()
    return changed


@dataclass(frozen=True)
class StaffEvidence:
    """How a person agreed, as staff record it: the day they agreed and by what means (a paper form, a call)."""

    agreed_on: date
    how: str


def add_subscriber_by_staff(
    request: SubscriptionRequest, evidence: StaffEvidence | None, actor: str, ip: str | None
) -> Subscriber:
    """Add one address by hand: confirmed with ``evidence`` of consent, else pending and sent a confirmation.

    The subscriber, its consent event (source "staff") and an audit entry naming ``actor`` in one commit;
    the confirmation email is queued after it. InvalidInput for a known or erased address, or bad evidence.
    """
    if find_subscriber(request.email) is not None:
        raise InvalidInput("email", f"{request.email} is already a subscriber; nothing was added.")
    if is_erased(request.email):
        raise InvalidInput("email", "This address was erased on its owner's request; only its owner can subscribe it.")
    detail: dict[str, Any] = {"by": actor, "topics": Topic(request.topics).to_names()}
    subscriber = Subscriber(email=request.email, name=request.name, topics=int(request.topics))
    if evidence is None:
        subscriber.status, subscriber.confirm_nonce, event = PENDING, _nonce(), "subscribe"
    else:
        # The keys the CSV export reads its consent columns from.
        detail |= {"consent_at": _agreed_at(evidence.agreed_on), "consent_source": _evidence_how(evidence.how)}
        subscriber.status, subscriber.confirmed_at, event = CONFIRMED, utcnow(), "confirm"
    db.session.add(subscriber)
    _log(subscriber, event, Consent(source="staff", ip=ip), detail)
    audit = {"status": subscriber.status, "evidence": detail.get("consent_source")}
    db.session.add(AuditEntry(actor=actor, action="subscriber.add", target=request.email, ip=ip, detail=audit))
    try:
        db.session.commit()
    except IntegrityError:  # the same address arrived from elsewhere meanwhile
        db.session.rollback()
        raise InvalidInput("email", f"{request.email} is already a subscriber; nothing was added.") from None
    if evidence is None:
        current_app.extensions["celery"].send_task(ANSWER_TASK, args=[[[subscriber.id, CONFIRMATION]]])
    return subscriber


def _agreed_at(day: date) -> str:
    """The day consent was given, as an ISO date; not in the future."""
    if day > utcnow().date():
        raise InvalidInput("agreed_on", "Consent cannot have been given in the future.")
    return day.isoformat()


def _evidence_how(how: str) -> str:
    """How the person agreed: one line of at most MAX_CONSENT_SOURCE characters (a CSV import takes it back)."""
    how = how.strip()
    if not how or not is_one_line(how):
        raise InvalidInput("how", "Say on one line how the person agreed.")
    if len(how) > MAX_CONSENT_SOURCE:
        raise InvalidInput("how", f"At most {MAX_CONSENT_SOURCE} characters.")
    return how
