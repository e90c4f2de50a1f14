"""Render an email's text and HTML twins from ``templates/email`` and inline the CSS once.

The text part is wrapped at 78 characters, never inside a URL: a URL too long for a line, or a
personal placeholder (its value's length is unknown here), stands on a line of its own. The
HTML keeps only its at-rules (the dark-mode and narrow-screen media queries) in a ``<style>``
block; everything else is inlined. Inside an app context the footer's organisation details
(ORG_POSTAL_ADDRESS) come from the configuration.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import css_inline
from flask import current_app, has_app_context
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"

#: What ``personal_placeholder`` produces; group 1 is the name. Plain ASCII that neither HTML
#: escaping nor CSS inlining alters, so the message builder finds it in the rendered parts.
PLACEHOLDER = re.compile(r"@@personal:([A-Za-z0-9_]+)@@")

#: RFC 5322's recommended line length; the text part's lines are at most this long, URLs aside.
TEXT_WIDTH = 78


@dataclass(frozen=True)
class RenderedEmail:
    """The two parts of an email, possibly still holding personal placeholders."""

    text: str
    html: str


def personal_placeholder(name: str) -> str:
    """A marker put where a per-recipient value (an unsubscribe URL, say) goes.

    ``MessageFactory.build(personal={name: value})`` fills it in per recipient.
    """
    placeholder = f"@@personal:{name}@@"
    if not PLACEHOLDER.fullmatch(placeholder):
        raise ValueError(f"a personal placeholder name is letters, digits and '_' only: {name!r}")
    return placeholder


@lru_cache(maxsize=1)
def _environment() -> Environment:
    """The Jinja environment for email templates (autoescape for .html only)."""
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["personal"] = personal_placeholder
    return env


@lru_cache(maxsize=1)
def _inliner() -> css_inline.CSSInliner:
    """One inliner for the process; it keeps no per-message state."""
    # keep_at_rules: the media queries (dark mode, narrow screens) cannot be inlined; they stay in
    # a <style> block while every plain rule is inlined and dropped from it.
    return css_inline.CSSInliner(keep_style_tags=False, keep_at_rules=True, load_remote_stylesheets=False)


def wrap_text(text: str) -> str:
    """``text`` with every line longer than TEXT_WIDTH wrapped at spaces; URLs and placeholders stay whole."""
    return "\n".join(_wrapped(line) for line in text.split("\n"))


def _wrapped(line: str) -> str:
    """One line wrapped under its own indent (a ``* `` item's under its text); a placeholder gets a line of its own."""
    if len(line) <= TEXT_WIDTH and not PLACEHOLDER.search(line):
        return line
    indent = line[: len(line) - len(line.lstrip(" "))]
    hang = indent + "  " if line.lstrip(" ").startswith("* ") else indent
    lines: list[str] = []
    current = ""
    for word in line.split():
        alone = PLACEHOLDER.search(word) is not None
        if current and (alone or len(hang) + len(current) + 1 + len(word) > TEXT_WIDTH):
            lines.append(current)
            current = ""
        current = f"{current} {word}" if current else word
        if alone:
            lines.append(current)
            current = ""
    if current:
        lines.append(current)
    return "\n".join((indent if n == 0 else hang) + part for n, part in enumerate(lines))


def render_email(name: str, **context: Any) -> RenderedEmail:
    """Render ``email/NAME.txt`` and ``email/NAME.html`` with ``context``; inline the HTML's CSS."""
    env = _environment()
    if has_app_context():
        context.setdefault("org_postal_address", current_app.config["ORG_POSTAL_ADDRESS"])
    text = env.get_template(f"email/{name}.txt").render(**context)
    html = env.get_template(f"email/{name}.html").render(**context)
    return RenderedEmail(text=wrap_text(text), html=_inliner().inline(html))
