"""What counts as a control character in text people give us: one definition for every check."""

from __future__ import annotations

import re

#: C0 controls and DEL: never in a one-line value (an address, a name, a slug, a setting).
CONTROL = re.compile(r"[\x00-\x1f\x7f]")

#: The same, but tab, line feed and carriage return are allowed (multi-line text such as a news body).
CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def is_one_line(value: str) -> bool:
    """True when ``value`` holds no control character (so no line break either)."""
    return CONTROL.search(value) is None


def without_control(value: str) -> str:
    """``value`` with every control character removed (for search boxes, where dropping is kinder)."""
    return CONTROL.sub("", value)
