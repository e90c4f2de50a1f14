"""Render an email's text and HTML twins from ``templates/email`` and inline the CSS once."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import css_inline
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"

#: What ``personal_placeholder`` produces; group 1 is the name. Plain ASCII that neither HTML
#: escaping nor CSS inlining alters, so the message builder finds it in the rendered parts.
PLACEHOLDER = re.compile(r"@@personal:([A-Za-z0-9_]+)@@")


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
    return css_inline.CSSInliner(keep_style_tags=True, load_remote_stylesheets=False)


def render_email(name: str, **context: Any) -> RenderedEmail:
    """Render ``email/NAME.txt`` and ``email/NAME.html`` with ``context``; inline the HTML's CSS."""
    env = _environment()
    text = env.get_template(f"email/{name}.txt").render(**context)
    html = env.get_template(f"email/{name}.html").render(**context)
    return RenderedEmail(text=text, html=_inliner().inline(html))
