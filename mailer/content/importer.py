"""Import meetings, projects and news from the JSON format in docs/content-format.md.

The whole file is checked before anything is written, and the writes share one transaction:
a bad file changes nothing. Items are matched by slug; an item whose fields are all equal to
the stored row is left alone (its ``updated_at`` does not move, so it is not "new" again).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import SLUG_LENGTH, AuditEntry, MeetingChange, utcnow
from ..text import CONTROL, CONTROL_IN_TEXT
from .calendar import EVENT_FIELDS
from .schema import HISTORY_FIELDS, SECTIONS, SLUG, Field, plain, slug_from_title

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_ERRORS = 20
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
SURROGATE = re.compile("[\ud800-\udfff]")


class ContentFileError(ValueError):
    """A file that cannot be imported; every problem names its item path and line."""

    def __init__(self, source: str, problems: list[tuple[int | None, str]]) -> None:
        self.source = source
        self.problems = problems
        lines = [f"{source}:{line}: {text}" if line else f"{source}: {text}" for line, text in problems]
        super().__init__("\n".join(lines))


@dataclass
class ImportReport:
    """What an import did, by section: slugs created and updated, and how many were unchanged."""

    created: dict[str, list[str]] = field(default_factory=dict)
    updated: dict[str, list[str]] = field(default_factory=dict)
    unchanged: int = 0

    @property
    def changed(self) -> bool:
        """True when the import created or updated anything."""
        return any(self.created.values()) or any(self.updated.values())

    def summary(self) -> str:
        """One line for people: counts created, updated and unchanged."""
        created = sum(len(v) for v in self.created.values())
        updated = sum(len(v) for v in self.updated.values())
        return f"{created} created, {updated} updated, {self.unchanged} unchanged"


def import_file(path: Path, *, demo: bool = False, actor: str = "cli") -> ImportReport:
    """Import a JSON content file; with ``demo`` every item is marked as demo content."""
    source = str(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ContentFileError(source, [(None, f"cannot read the file: {exc.strerror}")]) from None
    if len(data) > MAX_FILE_BYTES:
        raise ContentFileError(source, [(None, f"the file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ContentFileError(source, [(line, "the file is not UTF-8 text")]) from None
    return import_text(text, source=source, demo=demo, actor=actor)


def import_text(text: str, *, source: str = "<input>", demo: bool = False, actor: str = "cli") -> ImportReport:
    """Check and import a JSON document in one transaction; raise ContentFileError on any problem."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ContentFileError(source, [(exc.lineno, f"broken JSON: {exc.msg} (column {exc.colno})")]) from None
    except RecursionError:
        raise ContentFileError(source, [(None, "broken JSON: nested too deeply")]) from None
    items, problems = _validate(document)
    if problems:
        located = [(_line_of(text, path), f"{_path_text(path)}: {message}") for path, message in problems]
        raise ContentFileError(source, located[:MAX_ERRORS])
    report = ImportReport()
    try:
        for section, rows in items.items():
            model = SECTIONS[section][0]
            for values in rows:
                values["demo"] = bool(values.get("demo")) or demo
                _upsert(model, section, values, report)
        if report.changed:
            db.session.add(
                AuditEntry(
                    actor=actor,
                    action="content.import",
                    target=Path(source).name[:254],
                    detail={"created": report.created, "updated": report.updated},
                )
            )
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return report


class ContentItemError(ValueError):
    """One item from a form that cannot be saved; ``problems`` maps each field to what is wrong."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("; ".join(f"{name}: {text}" for name, text in problems.items()))
        self.problems = problems


def save_item(section: str, entry: dict[str, Any], *, actor: str, new: bool) -> tuple[str, bool]:
    """Check and save one item with the import's rules, problems worded for people; return (slug, changed).

    A new item must not reuse a slug; left empty, its slug is made from the title (``-2``, ``-3`` … when taken)."""
    model, fields = SECTIONS[section]
    if new and not entry.get("slug") and isinstance(entry.get("title"), str):
        entry = {**entry, "slug": _free_slug(model, slug_from_title(entry["title"]) or NOUNS[section])}
    values, problems = _validate_item(entry, fields, (section, 0), FOR_PEOPLE)
    found = {str(path[2]) if len(path) > 2 else "item": text for path, text in problems}
    if not found and new and _slug_taken(model, values["slug"]):
        found["slug"] = SLUG_TAKEN
    if found:
        raise ContentItemError(found)
    report = ImportReport()
    # A new item is inserted, never matched: a request that took the slug meanwhile makes the insert fail.
    (_create if new else _upsert)(model, section, values, report)
    if report.changed:
        detail = {"created": report.created, "updated": report.updated}
        target = f"{section}:{values['slug']}"
        db.session.add(AuditEntry(actor=actor, action="content.edit", target=target, detail=detail))
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        if not new:
            raise
        raise ContentItemError({"slug": SLUG_TAKEN}) from None  # taken by a request saved meanwhile
    return values["slug"], report.changed


SLUG_TAKEN = "This slug is already used by another item: choose another, or leave it empty"
#: The slug of a new item whose title has no letter or digit to make one from.
NOUNS = {"meetings": "meeting", "projects": "project", "news": "news"}


def _free_slug(model: type, base: str) -> str:
    """``base``, or the first of ``base-2``, ``base-3`` … that no item of ``model`` uses (each within SLUG_LENGTH)."""
    slug, number = base, 1
    while _slug_taken(model, slug):
        number += 1
        suffix = f"-{number}"
        slug = base[: SLUG_LENGTH - len(suffix)].rstrip("-") + suffix
    return slug


def _slug_taken(model: type, slug: str) -> bool:
    """True when an item of ``model`` (archived or not) has ``slug``."""
    return db.session.execute(db.select(model.id).where(model.slug == slug)).first() is not None


def _upsert(model: type, section: str, values: dict[str, Any], report: ImportReport) -> None:
    """Create the row for ``values`` or update the one with its slug when a field differs."""
    row = db.session.execute(db.select(model).where(model.slug == values["slug"])).scalar_one_or_none()
    if row is None:
        _create(model, section, values, report)
        return
    if apply_changes(row, section, values):
        report.updated.setdefault(section, []).append(values["slug"])
    else:
        report.unchanged += 1


def apply_changes(row: Any, section: str, values: dict[str, Any]) -> bool:
    """Set the ``values`` that differ on ``row``; False when none did (``updated_at`` stays).

    The one way a stored item changes (file import, console, feeds): a meeting's calendar
    SEQUENCE goes up when its event changes, and a change to what readers rely on (dates,
    place, status, title) is kept in the meeting's public history."""
    changed = {name: (getattr(row, name), value) for name, value in values.items() if getattr(row, name) != value}
    if not changed:
        return False
    for name, (_, value) in changed.items():
        setattr(row, name, value)
    if section == "meetings":
        if EVENT_FIELDS & changed.keys():
            row.sequence = type(row).sequence + 1  # in SQL: two saves at once each count
        history = {name: [plain(old), plain(new)] for name, (old, new) in changed.items() if name in HISTORY_FIELDS}
        if history:
            db.session.add(MeetingChange(meeting_id=row.id, changes=history))
    row.updated_at = utcnow()
    return True


def _create(model: type, section: str, values: dict[str, Any], report: ImportReport) -> None:
    """Add a row for ``values``."""
    create_item(model, values)
    report.created.setdefault(section, []).append(values["slug"])


def create_item(model: type, values: dict[str, Any]) -> Any:
    """Add (not commit) a new item of ``model`` made of ``values``, new as of now."""
    now = utcnow()
    row = model(**values, created_at=now, updated_at=now)
    db.session.add(row)
    return row


Path_ = tuple[str | int, ...]
Problems = list[tuple[Path_, str]]


def _validate(document: Any) -> tuple[dict[str, list[dict[str, Any]]], Problems]:
    """Check the whole document; return the cleaned items by section and every problem found."""
    if not isinstance(document, dict):
        return {}, [((), "the file must hold a JSON object with meetings, projects and news arrays")]
    problems: Problems = [((key,), "unknown section") for key in document if key not in SECTIONS]
    if not any(key in document for key in SECTIONS):
        problems.append(((), "no meetings, projects or news array"))
    items: dict[str, list[dict[str, Any]]] = {}
    for section, (_, fields) in SECTIONS.items():
        entries = document.get(section, [])
        if not isinstance(entries, list):
            problems.append(((section,), "must be an array"))
            continue
        seen: set[str] = set()
        items[section] = []
        for index, entry in enumerate(entries):
            values, found = _validate_item(entry, fields, (section, index))
            problems.extend(found)
            if values.get("slug") in seen:
                problems.append(((section, index, "slug"), f"duplicate slug {values['slug']!r} in this file"))
            seen.add(values.get("slug", ""))
            items[section].append(values)
    return items, problems


@dataclass(frozen=True)
class Wording:
    """How an item's problems are worded: for a JSON file (field names as the file spells them) or for people."""

    for_people: bool

    def missing(self, spec: Field) -> str:
        """``missing start_date`` / ``Enter the start date``."""
        if not self.for_people:
            return f"missing {spec.name}"
        return f"{'Choose' if spec.kind == 'enum' else 'Enter'} the {spec.label.lower()}"

    def invalid(self, spec: Field, problem: str) -> str:
        """``must be YYYY-MM-DD`` / ``Start date must be YYYY-MM-DD``."""
        return f"{spec.label} {problem}" if self.for_people else problem

    def end_before_start(self) -> str:
        """An end date before the start date."""
        return "End date must be on or after the start date" if self.for_people else "is before start_date"


FOR_FILES, FOR_PEOPLE = Wording(for_people=False), Wording(for_people=True)


def _validate_item(
    entry: Any, fields: tuple[Field, ...], path: Path_, wording: Wording = FOR_FILES
) -> tuple[dict[str, Any], Problems]:
    """Check one item against its fields; return its cleaned values and its problems, worded by ``wording``."""
    if not isinstance(entry, dict):
        return {}, [(path, "must be an object")]
    known = {f.name for f in fields}
    problems: Problems = [((*path, key), "unknown field") for key in entry if key not in known]
    values: dict[str, Any] = {}
    for spec in fields:
        value = entry.get(spec.name)
        if value is None or value == "":
            if spec.required:
                problems.append(((*path, spec.name) if spec.name in entry else path, wording.missing(spec)))
            elif spec.kind != "bool":
                values[spec.name] = None
            continue
        cleaned, problem = _check(value, spec)
        if problem:
            problems.append(((*path, spec.name), wording.invalid(spec, problem)))
        else:
            values[spec.name] = cleaned
    if "start_date" in values and values.get("end_date") is None:
        values["end_date"] = values["start_date"]
    if values.get("start_date") and values["end_date"] < values["start_date"]:
        problems.append(((*path, "end_date"), wording.end_before_start()))
    return values, problems


def _check(value: Any, spec: Field) -> tuple[Any, str | None]:
    """Return the stored value for one field, or a problem saying what it should be."""
    if spec.kind == "bool":
        return (value, None) if isinstance(value, bool) else (None, "must be true or false")
    if spec.kind == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            return None, "must be a whole number"
        if not spec.minimum <= value <= spec.maximum:  # type: ignore[operator]
            return None, f"must be between {spec.minimum} and {spec.maximum}"
        return value, None
    if not isinstance(value, str):
        return None, "must be a string"
    if not value.isascii() and SURROGATE.search(value):
        return None, "holds an unpaired surrogate (\\ud800-\\udfff), which is not text"
    if spec.max_length and len(value) > spec.max_length:
        return None, f"is longer than {spec.max_length} characters"
    if spec.kind == "text":
        return (None, "holds control characters") if CONTROL_IN_TEXT.search(value) else (value, None)
    if CONTROL.search(value):
        return None, "must be a single line without control characters"
    if spec.name == "slug" and not SLUG.match(value):
        return None, "must be lowercase letters, digits and single hyphens, like smemm-29"
    if spec.kind == "enum" and value not in spec.choices:
        return None, f"must be one of {', '.join(spec.choices)}"
    if spec.kind == "url" and not re.match(r"^https?://[^\s/?#]+", value):
        return None, "must be an http:// or https:// URL"
    if spec.kind == "date":
        try:
            return (date.fromisoformat(value), None) if ISO_DATE.match(value) else (None, "must be YYYY-MM-DD")
        except ValueError:
            return None, "is not a real date (YYYY-MM-DD)"
    return value.strip(), None


def _path_text(path: Path_) -> str:
    """``("meetings", 2, "start_date")`` as ``meetings[2].start_date``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "(top level)"


def _line_of(text: str, path: Path_) -> int | None:
    """The line where the value at ``path`` starts in the JSON ``text`` (the document parsed)."""
    decoder = json.JSONDecoder()
    pos = _skip_space(text, 0)
    for part in path:
        found = _child_position(decoder, text, pos, part)
        if found is None:
            break
        pos = found
    return text.count("\n", 0, pos) + 1


def _child_position(decoder: json.JSONDecoder, text: str, pos: int, part: str | int) -> int | None:
    """Position of member ``part`` of the object or array starting at ``pos``, or None."""
    opening = text[pos : pos + 1]
    if opening not in ("{", "[") or (opening == "{") != isinstance(part, str):
        return None
    pos, index = _skip_space(text, pos + 1), 0
    while text[pos] not in "}]":
        key = None
        if opening == "{":
            key, pos = decoder.raw_decode(text, pos)
            pos = _skip_space(text, _skip_space(text, pos) + 1)  # past the colon
        if key == part or index == part:
            return pos
        _, pos = decoder.raw_decode(text, pos)
        pos = _skip_space(text, pos)
        if text[pos] == ",":
            pos = _skip_space(text, pos + 1)
        index += 1
    return None


def _skip_space(text: str, pos: int) -> int:
    """The first position at or after ``pos`` that is not JSON whitespace."""
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos
