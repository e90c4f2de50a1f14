"""Subscribers in and out as CSV, for moving lists between systems and for records.

Import never makes anyone confirmed without evidence of consent: a row is imported as
confirmed only when it carries ``consent_at`` (when the person agreed), and that evidence
goes into the consent log. Rows without it come in pending and receive nothing unless
confirmation emails are asked for. Addresses already known are left exactly as they are, so
an import can never resubscribe someone who left or bounced; addresses erased on their owner's
request are skipped, so an import cannot bring them back either.
"""

from __future__ import annotations

import csv
import functools
import itertools
import json
import re
import secrets
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any, NamedTuple

from sqlalchemy import JSON, Row, Table, Text, bindparam, cast, column, func, literal, select
from sqlalchemy.dialects import postgresql, sqlite

from ..extensions import db
from ..models import ALL_TOPICS, AuditEntry, ConsentEvent, Subscriber, Topic, utcnow
from ..text import is_one_line
from . import tasks
from .erasure import erased_among
from .service import (
    CONFIRMED,
    MAX_CONSENT_SOURCE,
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
MAX_SOURCE = MAX_CONSENT_SOURCE
MAX_VERSION = 32
CHUNK = 1000
MAX_PROBLEMS = 50
#: A line end in text mode: CRLF, CR or LF.
_LINES = re.compile(r"[^\r\n]*(?:\r\n?|\n)|[^\r\n]+")


class NotUTF8(ValueError):
    """A file that is not UTF-8 text; ``offset`` is the first bad byte."""

    def __init__(self, offset: int) -> None:
        super().__init__(f"not UTF-8 text (byte {offset})")
        self.offset = offset


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
    #: Rows skipped because their address was erased on its owner's request (counted, not listed).
    erased_skipped: int = 0


class _Row(NamedTuple):
    """One checked CSV row (a tuple: built once per row, so cheap to make)."""

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


def utf8_lines(stream: IO[bytes]) -> Iterator[str]:
    """The lines of a UTF-8 file as ``csv`` wants them (ends kept, a BOM dropped); NotUTF8 names the bad byte."""
    offset = 0
    for raw in stream:
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NotUTF8(offset + exc.start) from None
        if offset == 0 and line.startswith("\ufeff"):
            line = line[1:]
        offset += len(raw)
        # A file read in binary splits only at LF; a lone CR ends a line too, as in text mode.
        if "\r" in line:
            yield from _LINES.findall(line)
        else:
            yield line


def import_subscribers(
    lines: Iterable[str],
    *,
    source_name: str,
    send_confirmations: bool,
    actor: str = "cli",
    dry_run: bool = False,
    refuse_formulas: bool = False,
) -> ImportReport:
    """Check each row and insert the new addresses in bulk, in one transaction: all rows or none.

    Raise SubscriberImportError listing every problem by line and column; known addresses are
    left untouched. Rows are checked and written CHUNK at a time, so memory stays small. A dry
    run does all of it and rolls back instead of committing, so its report is what an import
    would do now; ``actor`` is who the audit entry names. ``refuse_formulas`` makes a free-text cell
    that starts like a spreadsheet formula a problem (the console's uploads; the export defuses them anyway).
    """
    checker = _RowChecker(lines, refuse_formulas)
    writer = _BulkWriter(source_name)
    try:
        for chunk in _chunks(checker.rows()):
            if not checker.problems:  # once a row is bad, nothing will be kept: only check the rest
                writer.write(chunk)
        if checker.problems:
            raise SubscriberImportError(checker.summary())
        if dry_run:
            db.session.rollback()
            return writer.report
        writer.commit(actor)
    except BaseException:
        db.session.rollback()
        raise
    if send_confirmations:
        for subscriber_id in writer.pending_ids:
            tasks.send_confirmation_email.delay(subscriber_id)
    return writer.report


class _RowChecker:
    """Checks a CSV's header, then each row with the same rules as the public form, remembering problems."""

    def __init__(self, lines: Iterable[str], refuse_formulas: bool = False) -> None:
        self.reader = csv.reader(lines)
        self.text = _not_formula if refuse_formulas else _as_is
        header = next(self.reader, [])
        if "email" not in header:
            raise SubscriberImportError(["line 1: the header must have an 'email' column"])
        unknown = sorted(set(header) - IMPORT_COLUMNS)
        if unknown:
            raise SubscriberImportError([f"line 1: unknown columns: {', '.join(unknown)}"])
        self.width = len(header)
        # Where each column is in a row padded to width + 1: a repeated column counts at its last
        # place, as csv.DictReader has it, and a column the file lacks reads the padding's "".
        place = {name: index for index, name in enumerate(header)}
        self.place = {name: place.get(name, self.width) for name in IMPORT_COLUMNS}
        self.problems: list[str] = []
        self.more = 0
        self.seen: dict[str, int] = {}

    def rows(self) -> Iterator[_Row]:
        """The good rows, in file order; a bad one is recorded in ``problems`` and left out."""
        last = self.reader.line_num  # a quoted value may span lines, so a row starts after the previous one
        for values in self.reader:
            line, last = last + 1, self.reader.line_num
            if not values:
                continue  # a blank line
            try:
                row = self._checked(line, values)
            except InvalidInput as exc:
                self._problem(f"line {line}: {exc.field}: {exc.message}")
                continue
            key = row.email.lower()
            if key in self.seen:
                self._problem(f"line {line}: email: {row.email} is already on line {self.seen[key]}")
                continue
            self.seen[key] = line
            yield row

    def _problem(self, text: str) -> None:
        """Record a problem; past the first 50 only count them."""
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)
        else:
            self.more += 1

    def summary(self) -> list[str]:
        """The problems to show: the first 50 and how many more there were."""
        return self.problems + ([f"… and {self.more} more"] if self.more else [])

    def _checked(self, line: int, values: list[str]) -> _Row:
        """One row checked with the same rules as the public form."""
        if len(values) > self.width:
            raise InvalidInput("row", "more values than columns")
        values += [""] * (self.width + 1 - len(values))  # a short row's missing values are empty
        place = self.place
        topics = _topic_names(values[place["topics"]])
        consent_at = _consent_time(values[place["consent_at"]])
        return _Row(
            line=line,
            status=_status(values[place["status"]], consent_at),
            email=clean_email(values[place["email"]]),
            name=clean_name(self.text("name", values[place["name"]]) or None),
            topics=_topic_mask(topics),
            consent_at=consent_at,
            consent_source=_short(
                "consent_source", self.text("consent_source", values[place["consent_source"]]), MAX_SOURCE
            ),
            consent_version=_short(
                "consent_version", self.text("consent_version", values[place["consent_version"]]), MAX_VERSION
            ),
        )


def _as_is(name: str, value: str) -> str:
    """A free-text cell as it is."""
    return value


def _not_formula(name: str, value: str) -> str:
    """A free-text cell that a spreadsheet would not run as a formula (an exported one starts with ')."""
    if _spreadsheet_safe(value) != value:
        raise InvalidInput(name, "starts like a spreadsheet formula (=, +, -, @); put ' before it to keep it as text")
    return value


def _topic_names(value: str) -> tuple[str, ...]:
    """The topic names in a cell; spaces, commas and semicolons all separate them."""
    return tuple(value.replace(";", " ").replace(",", " ").split())


@functools.lru_cache(maxsize=256)
def _topic_mask(names: tuple[str, ...]) -> int:
    """The topic mask for a row's names (every topic when none), checked as the form checks them.

    Cached: an import holds a handful of distinct topic cells, repeated on every row.
    """
    return int(clean_topics(names)) if names else ALL_TOPICS


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
    if len(value) > limit or not is_one_line(value):
        raise InvalidInput(name, f"must be one line of at most {limit} characters")
    return value.strip()


class _BulkWriter:
    """Inserts checked rows CHUNK at a time: the new subscribers in one statement, then their consent events."""

    def __init__(self, source_name: str) -> None:
        self.source_name = source_name
        self.report = ImportReport()
        self.pending_ids: list[int] = []
        self.now = utcnow()
        self.suppressed = f"imported from {source_name}"

    def write(self, rows: list[_Row]) -> None:
        """Insert the rows whose address is neither erased nor known yet; count what each became."""
        rows = self._without_erased(rows)
        if not rows:
            return
        now = self.now
        # A known address (in any case) hits the unique index on lower(email) and is skipped, so it
        # stays exactly as it is, even one that subscribed on the web while the import was running.
        inserted = _insert_rows(
            Subscriber.__table__,
            [self._subscriber(row) for row in rows],
            {"created_at": now, "updated_at": now, "link_version": 1},
            returning=("email", "id"),
            skip_conflicts=True,
        )
        # Ids are matched back by address: no backend promises RETURNING rows in input order.
        id_of = {email: subscriber_id for email, subscriber_id in inserted}
        new = [row for row in rows if row.email in id_of]
        self.report.already_known += [row.email for row in rows if row.email not in id_of]
        if not new:
            return
        ids = [id_of[row.email] for row in new]
        _insert_rows(
            ConsentEvent.__table__,
            [self._event(subscriber_id, row) for subscriber_id, row in zip(ids, new, strict=True)],
            {"event": "import", "occurred_at": now, "source": "import"},
        )
        for subscriber_id, row in zip(ids, new, strict=True):
            if row.status == CONFIRMED:
                self.report.confirmed += 1
            elif row.status == PENDING:
                self.report.pending += 1
                self.pending_ids.append(subscriber_id)
            else:
                self.report.opted_out += 1

    def _without_erased(self, rows: list[_Row]) -> list[_Row]:
        """The rows whose address was not erased on its owner's request; the others are counted."""
        erased = erased_among(row.email for row in rows)
        self.report.erased_skipped += len(erased)
        return [row for row in rows if row.email not in erased] if erased else rows

    def _subscriber(self, row: _Row) -> dict[str, object]:
        """The subscribers values of one imported line that vary from line to line."""
        return {
            "email": row.email, "name": row.name, "topics": row.topics, "status": row.status,
            "confirmed_at": self.now if row.status == CONFIRMED else None,
            "unsubscribed_at": self.now if row.status == UNSUBSCRIBED else None,
            "confirm_nonce": secrets.token_hex(16) if row.status == PENDING else None,
            "suppressed_reason": self.suppressed if row.status == SUPPRESSED else None,
        }  # fmt: skip

    def _event(self, subscriber_id: int, row: _Row) -> dict[str, object]:
        """The consent-log entry of one imported line: where it came from and the consent it carried."""
        evidence = {"file": self.source_name, "line": row.line, "consent_at": _iso(row.consent_at) or None,
                    "consent_source": row.consent_source}  # fmt: skip
        return {"subscriber_id": subscriber_id, "consent_version": row.consent_version, "detail": evidence}

    def commit(self, actor: str) -> None:
        """Record the import in the audit log under ``actor`` and commit everything at once."""
        report = self.report
        detail = {"file": self.source_name, "confirmed": report.confirmed, "pending": report.pending,
                  "opted_out": report.opted_out, "already_known": len(report.already_known),
                  "erased_skipped": report.erased_skipped}  # fmt: skip
        db.session.add(AuditEntry(actor=actor, action="subscribers.import", target=self.source_name, detail=detail))
        db.session.commit()


def _insert_rows(
    table: Table,
    rows: list[dict[str, Any]],
    constants: dict[str, object],
    returning: tuple[str, ...] = ("id",),
    skip_conflicts: bool = False,
) -> Sequence[Row[Any]]:
    """Insert ``rows`` (all with the same keys), each with ``constants`` too, in one round trip or a few.

    On PostgreSQL the rows travel as one JSON document, ``INSERT ... SELECT FROM json_to_recordset``:
    a 1,000-row VALUES list has 10,000 parameters, which psycopg and the server take longer to
    parse than the import takes to check the rows. On SQLite, SQLAlchemy's multi-row VALUES.
    With ``skip_conflicts`` a row that would break a unique index is left out (and not returned).
    """
    names = list(rows[0])
    if db.session.get_bind().dialect.name == "postgresql":
        document = cast(bindparam("rows", json.dumps(rows, default=_json_value), type_=Text), JSON)
        columns = [column(name, table.c[name].type) for name in names]
        source = func.json_to_recordset(document).table_valued(*columns).render_derived(with_types=True)
        fixed = [literal(value, table.c[name].type) for name, value in constants.items()]
        statement = postgresql.insert(table).from_select([*names, *constants], select(*source.c, *fixed))
        params: list[dict[str, Any]] | None = None
    else:
        statement = sqlite.insert(table)
        params = [{**row, **constants} for row in rows]
    if skip_conflicts:
        statement = statement.on_conflict_do_nothing()
    # RETURNING is also what makes SQLAlchemy send an executemany as multi-row INSERTs.
    return db.session.execute(statement.returning(*[table.c[name] for name in returning]), params).all()


def _json_value(value: object) -> str:
    """Datetimes in the JSON document as ISO 8601 (PostgreSQL reads them back exactly)."""
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _chunks(rows: Iterable[_Row]) -> Iterator[list[_Row]]:
    """``rows`` in lists of CHUNK."""
    remaining = iter(rows)
    while chunk := list(itertools.islice(remaining, CHUNK)):
        yield chunk
