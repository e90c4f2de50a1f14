"""Rendering the email templates: CSS inlined, HTML autoescaped, text left alone, strict variables."""

from __future__ import annotations

import pytest
from jinja2 import UndefinedError

from mailer.mail import personal_placeholder, render_email


def test_css_is_inlined_and_media_queries_kept() -> None:
    """Rules from the <style> block become style attributes; the block stays for @media."""
    html = render_email("base", org_name="SMEWG News").html
    assert '<div class="header" style="' in html
    assert "background: #0b5cad" in html.split('class="header"', 1)[1].split(">", 1)[0]
    assert "@media" in html


def test_html_is_autoescaped_and_text_is_not() -> None:
    """Markup in a value is escaped in the HTML part and kept verbatim in the text part."""
    rendered = render_email("base", org_name="<script>alert(1)</script> & Co")
    assert "<script>alert(1)</script>" not in rendered.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in rendered.html
    assert "<script>alert(1)</script> & Co" in rendered.text


def test_personal_placeholders_survive_rendering() -> None:
    """The builder's markers come through autoescaping and CSS inlining unchanged, in both parts."""
    rendered = render_email("base", org_name="SMEWG News")
    for name in ("unsubscribe_url", "preferences_url"):
        assert f'href="{personal_placeholder(name)}"' in rendered.html
        assert personal_placeholder(name) in rendered.text


def test_missing_variable_is_an_error() -> None:
    """StrictUndefined: a variable the template needs but did not get raises instead of rendering empty."""
    with pytest.raises(UndefinedError, match="org_name"):
        render_email("base")


def test_placeholder_names_are_checked() -> None:
    """A placeholder name the builder could not find again is refused when the template is rendered."""
    with pytest.raises(ValueError, match="placeholder"):
        personal_placeholder("unsubscribe url")
