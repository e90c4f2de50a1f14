"""Subscribers in and out as CSV, for moving lists between systems and for records.

Import never makes anyone confirmed without evidence of consent: a row is imported as
confirmed only when it carries ``consent_at`` (when the person agreed), and that evidence
goes into the consent log. Rows without it come in pending and receive nothing unless
confirmation emails are asked for. Addresses already known are left exactly as they are, so
an import can never resubscribe someone who left or bounced.
"""

from __future__ import annotations

import csv
import io
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

from sqlalchemy import func

from ..extensions import db
from ..models import AuditEntry, ConsentEvent, Subscriber, Topic, utcnow
from . import tasks
from .service import (
    CONFIRMED,
    PENDING,
    SUPPRESSED,
    UNSUBSCRIBED,
    InvalidInput,
    clean_email,
    clean_name,
    clean_topics,
)

EXPORT_COLUMNS = ["email", "name", "status", "topics", "created_at", "confirmed_at", "unsubscribed_at",
                  "consent_at", "consent_source", "consent_version"]  # fmt: skip
IMPORT_COLUMNS = {"email", "name", "topics", "consent_at", "consent_source", "consent_version", "status",
                  "created_at", "confirmed_at", "unsubscribed_at"}  # fmt: skip
#: Consent events that mean "this person agreed": their latest one is exported as the evidence.
CONSENT_GIVEN = ("confirm", "resubscribe", "import")
MAX_SOURCE = 32
MAX_VERSION = 32
CHUNK = 1000


class SubscriberImportError(ValueError):
    """A file that cannot be imported; ``problems`` lists ``line N: field: why``."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class ImportReport:
    """What an import did."""

    confirmed: int = 0
    pending: int = 0
    opted_out: int = 0
    already_known: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Row:
    """One checked CSV row."""

    line: int
    status: str
    email: str
    name: str | None
    topics: int
    consent_at: datetime | None
    consent_source: str | None
    consent_version: str | None


def _spreadsheet_safe(value: str) -> str:
    """Stop a spreadsheet from running a cell as a formula (CSV injection)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def export_rows() -> Iterator[list[str]]:
    """Every subscriber as a CSV row (header first), streamed in chunks, with their consent evidence."""
    yield EXPORT_COLUMNS
    latest = (
        db.select(ConsentEvent.subscriber_id, func.max(ConsentEvent.id).label("event_id"))
        .where(ConsentEvent.event.in_(CONSENT_GIVEN))
        .group_by(ConsentEvent.subscriber_id)
        .subquery()
    )
    query = (
        db.select(Subscriber, ConsentEvent)
        .outerjoin(latest, latest.c.subscriber_id == Subscriber.id)
        .outerjoin(ConsentEvent, ConsentEvent.id == latest.c.event_id)
        .order_by(Subscriber.id)
        .execution_options(yield_per=CHUNK)
    )
    for subscriber, event in db.session.execute(query):
        yield [_spreadsheet_safe(v) for v in _export_values(subscriber, event)]


def _export_values(subscriber: Subscriber, event: ConsentEvent | None) -> list[str]:
    """The export columns of one subscriber."""
    evidence = (event.detail or {}) if event else {}
    if event is not None and event.event == "import" and not evidence.get("consent_at"):
        event = None  # imported without consent: there is no evidence to export
    consent_at = evidence.get("consent_at") or (event.occurred_at.isoformat() if event else "")
    return [
        subscriber.email, subscriber.name or "", subscriber.status, " ".join(Topic(subscriber.topics).to_names()),
        _iso(subscriber.created_at), _iso(subscriber.confirmed_at), _iso(subscriber.unsubscribed_at),
        consent_at, evidence.get("consent_source") or (event.source if event else ""),
        (event.consent_version or "") if event else "",
    ]  # fmt: skip


def _iso(value: datetime | None) -> str:
    """ISO 8601 or the empty string."""
    return value.isoformat() if value else ""


def write_export(out: IO[str]) -> int:
    """Write the export CSV to ``out``; return how many subscribers it holds."""
    writer = csv.writer(out, lineterminator="\n")
    count = -1
    for row in export_rows():
        writer.writerow(row)
        count += 1
    return count


def read_import(text: str) -> list[_Row]:
    """Check every row of an import CSV; raise SubscriberImportError listing each problem with its line."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = set(reader.fieldnames or [])
    if "email" not in columns:
        raise SubscriberImportError(["line 1: the header must have an 'email' column"])
    unknown = sorted(columns - IMPORT_COLUMNS)
    if unknown:
        raise SubscriberImportError([f"line 1: unknown columns: {', '.join(unknown)}"])
    rows, problems, seen = [], [], {}
    last = 1  # the header; a quoted value may span lines, so a row starts after the previous one
    for record in reader:
        line, last = last + 1, reader.line_num
        try:
            row = _checked(line, record)
        except InvalidInput as exc:
            problems.append(f"line {line}: {exc.field}: {exc.message}")
            continue
        if row.email.lower() in seen:
            problems.append(f"line {line}: email: {row.email} is already on line {seen[row.email.lower()]}")
            continue
        seen[row.email.lower()] = line
        rows.append(row)
    if problems:
        more = [f"… and {len(problems) - 50} more"] if len(problems) > 50 else []
        raise SubscriberImportError(problems[:50] + more)
    return rows


def _checked(line: int, record: dict[str, Any]) -> _Row:
    """One row checked with the same rules as the public form."""
    if None in record:
        raise InvalidInput("row", "more values than columns")
    topics = (record.get("topics") or "").replace(";", " ").replace(",", " ").split()
    consent_at = _consent_time(record.get("consent_at") or "")
    return _Row(
        line=line,
        status=_status(record.get("status") or "", consent_at),
        email=clean_email(record.get("email") or ""),
        name=clean_name(record.get("name") or None),
        topics=int(clean_topics(topics)) if topics else int(Topic.MEETINGS | Topic.PROJECTS | Topic.NEWS),
        consent_at=consent_at,
        consent_source=_short("consent_source", record.get("consent_source"), MAX_SOURCE),
        consent_version=_short("consent_version", record.get("consent_version"), MAX_VERSION),
    )


def _status(value: str, consent_at: datetime | None) -> str:
    """Unsubscribed and suppressed rows stay so; otherwise confirmed only with consent evidence."""
    value = value.strip().lower()
    if value in (UNSUBSCRIBED, SUPPRESSED):
        return value
    if value not in ("", PENDING, CONFIRMED):
        raise InvalidInput("status", f"must be empty, pending, confirmed, unsubscribed or suppressed, not {value!r}")
    if value == CONFIRMED and consent_at is None:
        raise InvalidInput("status", "a confirmed row needs consent_at: when and how the person agreed")
    return CONFIRMED if consent_at else PENDING


def _consent_time(value: str) -> datetime | None:
    """The moment consent was given (ISO 8601, UTC when no offset), not in the future."""
    if not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput("consent_at", f"not an ISO 8601 date and time: {value!r}") from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if moment > utcnow():
        raise InvalidInput("consent_at", "consent cannot have been given in the future")
    return moment


def _short(name: str, value: str | None, limit: int) -> str | None:
    """An optional one-line value of at most ``limit`` characters."""
    if not value or not value.strip():
        return None
    if len(value) > limit or any(ord(c) < 32 for c in value):
        raise InvalidInput(name, f"must be one line of at most {limit} characters")
    return value.strip()


def import_rows(rows: list[_Row], *, source_name: str, send_confirmations: bool) -> ImportReport:
    """Insert the new addresses in one transaction; leave known ones untouched."""
    report = ImportReport()
    created: list[Subscriber] = []
    for chunk in _chunks(rows):
        known = _known(row.email for row in chunk)
        for row in chunk:
            if row.email.lower() in known:
                report.already_known.append(row.email)
                continue
            subscriber = _insert(row, source_name)
            if subscriber.status == CONFIRMED:
                report.confirmed += 1
            elif subscriber.status == PENDING:
                report.pending += 1
                created.append(subscriber)
            else:
                report.opted_out += 1
    detail = {"file": source_name, "confirmed": report.confirmed, "pending": report.pending,
              "opted_out": report.opted_out, "already_known": len(report.already_known)}  # fmt: skip
    db.session.add(AuditEntry(actor="cli", action="subscribers.import", target=source_name, detail=detail))
    db.session.commit()
    if send_confirmations:
        for subscriber in created:
            tasks.send_confirmation_email.delay(subscriber.id)
    return report


def _chunks(rows: list[_Row]) -> Iterator[list[_Row]]:
    """``rows`` in chunks of CHUNK."""
    for start in range(0, len(rows), CHUNK):
        yield rows[start : start + CHUNK]


def _known(emails: Iterable[str]) -> set[str]:
    """The lower-cased addresses among ``emails`` that are already subscribers."""
    lowered = [e.lower() for e in emails]
    found = db.session.execute(db.select(func.lower(Subscriber.email)).where(func.lower(Subscriber.email).in_(lowered)))
    return set(found.scalars())


def _insert(row: _Row, source_name: str) -> Subscriber:
    """Add one imported subscriber with its consent-log entry."""
    now = utcnow()
    subscriber = Subscriber(
        email=row.email, name=row.name, topics=row.topics, status=row.status,
        confirmed_at=now if row.status == CONFIRMED else None,
        unsubscribed_at=now if row.status == UNSUBSCRIBED else None,
        confirm_nonce=secrets.token_hex(16) if row.status == PENDING else None,
        suppressed_reason=f"imported from {source_name}" if row.status == SUPPRESSED else None,
    )  # fmt: skip
    evidence = {"file": source_name, "line": row.line, "consent_at": _iso(row.consent_at) or None,
                "consent_source": row.consent_source}  # fmt: skip
    db.session.add(subscriber)
    db.session.add(
        ConsentEvent(
            subscriber=subscriber,
            event="import",
            occurred_at=now,
            source="import",
            consent_version=row.consent_version,
            detail=evidence,
        )  # fmt: skip
    )
    return subscriber
