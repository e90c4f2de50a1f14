"""Times in the organisation's zone (ORG_TIMEZONE): shown by the console, read from its forms and the CLI."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app


class LocalTimeError(ValueError):
    """A local time that names no single moment (skipped or repeated by a clock change); the message says so."""


def org_zone() -> ZoneInfo:
    """The organisation's time zone."""
    return ZoneInfo(current_app.config["ORG_TIMEZONE"])


def local_time(moment: datetime | None, fmt: str = "%-d %B %Y %H:%M %Z") -> str:
    """``moment`` (UTC) as the organisation's local time with the zone's abbreviation; "" for None."""
    if moment is None:
        return ""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(org_zone()).strftime(fmt)


def zone_label(now: datetime | None = None) -> str:
    """``Asia/Singapore (UTC+08:00)``: the zone's name and its offset now."""
    offset = (now or datetime.now(UTC)).astimezone(org_zone()).strftime("%z")
    return f"{current_app.config['ORG_TIMEZONE']} (UTC{offset[:3]}:{offset[3:]})"


def to_utc(local: datetime, zone: ZoneInfo) -> datetime:
    """A naive wall-clock time in ``zone`` as a UTC moment; LocalTimeError when a clock change skips or repeats it."""
    earlier, later = local.replace(tzinfo=zone, fold=0), local.replace(tzinfo=zone, fold=1)
    if earlier.utcoffset() != later.utcoffset():
        shown = f"{local:%-d %B %Y %H:%M} in {zone.key}"
        # A skipped time comes back from UTC as another wall-clock time; a repeated one as itself.
        if earlier.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != local:
            raise LocalTimeError(f"{shown} does not exist: the clocks go forward then. Choose another time.")
        raise LocalTimeError(f"{shown} happens twice: the clocks go back then. Choose another time.")
    return earlier.astimezone(UTC)


def duration(seconds: float) -> str:
    """``about 3 minutes``, ``about 2 hours 5 minutes``: a time left, rounded up to the minute."""
    minutes = max(1, math.ceil(seconds / 60))
    if minutes == 1:
        return "about a minute"
    if minutes < 120:
        return f"about {minutes} minutes"
    return f"about {minutes // 60} hours {minutes % 60} minutes"


def register(bp: Blueprint) -> None:
    """Make ``local_time`` and ``duration`` template filters for the whole app, and ``zone_label`` a global."""
    bp.add_app_template_filter(local_time, "local_time")
    bp.add_app_template_filter(duration, "duration")
    bp.add_app_template_global(zone_label, "zone_label")
