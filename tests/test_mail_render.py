"""Rendering the email templates: CSS inlined, HTML autoescaped, text wrapped, strict variables."""

from __future__ import annotations

import pytest
from flask import Flask
from jinja2 import UndefinedError

from mailer.mail import personal_placeholder, render_email
from mailer.mail.render import TEXT_WIDTH, wrap_text

ADDRESS = "1 Example Street\nExample City 00000"


def test_css_is_inlined_and_media_queries_kept() -> None:
    """Rules from the <style> block become style attributes; only the @media rules stay in the block."""
    html = render_email("base", org_name="SMEWG News", org_postal_address=ADDRESS).html
    assert '<td class="header" style="' in html
    assert "background: #0b5cad" in html.split('class="header"', 1)[1].split(">", 1)[0]
    style = html.split("<style>", 1)[1].split("</style>", 1)[0]
    assert "@media (max-width: 620px)" in style
    assert "@media (prefers-color-scheme: dark)" in style
    assert "body { margin" not in style, "plain rules are inlined, not kept"


def test_html_is_a_table_shell_for_every_client() -> None:
    """Presentation tables, a 600 px table for Outlook (mso conditional), max-width elsewhere, dark mode."""
    html = render_email("base", org_name="SMEWG News", org_postal_address=ADDRESS).html
    assert html.count('role="presentation"') == 3
    assert '<!--[if mso]><table role="presentation" width="600"' in html
    assert "<!--[if mso]></td></tr></table><![endif]-->" in html
    assert "max-width: 600px" in html.split('class="container"', 1)[1].split(">", 1)[0]
    assert '<meta name="color-scheme" content="light dark">' in html
    assert '<meta name="supported-color-schemes" content="light dark">' in html
    assert "<div" not in html.split("<body", 1)[1], "layout is tables, not divs"


def test_footer_shows_the_postal_address_in_both_parts() -> None:
    """Each line of ORG_POSTAL_ADDRESS: on its own line of text, separated by <br> in HTML (escaped)."""
    rendered = render_email("base", org_name="SMEWG News", org_postal_address="1 Rue <Haute>\n75001 Paris")
    assert "SMEWG News\n1 Rue <Haute>\n75001 Paris\n" in rendered.text
    assert "1 Rue &lt;Haute&gt;<br>75001 Paris</p>" in rendered.html


def test_postal_address_comes_from_the_configuration(app: Flask) -> None:
    """Inside the app the footer takes ORG_POSTAL_ADDRESS without the caller passing it."""
    with app.app_context():
        rendered = render_email("base", org_name="SMEWG News")
    assert app.config["ORG_POSTAL_ADDRESS"] in rendered.text


def test_text_is_wrapped_without_breaking_urls() -> None:
    """Lines over 78 characters wrap at spaces under their indent; a long URL gets a line of its own."""
    url = "https://news.example.org/archive/7?t=" + "x" * 90
    text = "  " + "word " * 30 + url + " tail\n* " + "item " * 20 + "\nshort line\n-- "
    wrapped = wrap_text(text).split("\n")
    assert all(len(line) <= TEXT_WIDTH for line in wrapped if line.strip() != url)
    assert "  " + url in wrapped
    assert wrapped[-2:] == ["short line", "-- "]
    assert all(line.startswith("  ") for line in wrapped[:-2] if line.strip() and not line.startswith("* "))
    assert " ".join(wrap_text(text).split()) == " ".join(text.split())


def test_placeholders_stand_on_their_own_lines() -> None:
    """A personal value's length is unknown when rendering: its placeholder never shares a line."""
    unsubscribe = personal_placeholder("unsubscribe_url")
    assert wrap_text(f"Unsubscribe: {unsubscribe} now") == f"Unsubscribe:\n{unsubscribe}\nnow"


def test_html_is_autoescaped_and_text_is_not() -> None:
    """Markup in a value is escaped in the HTML part and kept verbatim in the text part."""
    rendered = render_email("base", org_name="<script>alert(1)</script> & Co", org_postal_address=ADDRESS)
    assert "<script>alert(1)</script>" not in rendered.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in rendered.html
    assert "<script>alert(1)</script> & Co" in rendered.text


def test_personal_placeholders_survive_rendering() -> None:
    """The builder's markers come through autoescaping and CSS inlining unchanged, in both parts."""
    rendered = render_email("base", org_name="SMEWG News", org_postal_address=ADDRESS)
    for name in ("unsubscribe_url", "preferences_url"):
        assert f'href="{personal_placeholder(name)}"' in rendered.html
        assert personal_placeholder(name) in rendered.text


def test_missing_variable_is_an_error() -> None:
    """StrictUndefined: a variable the template needs but did not get raises instead of rendering empty."""
    with pytest.raises(UndefinedError, match="org_name"):
        render_email("base", org_postal_address=ADDRESS)


def test_placeholder_names_are_checked() -> None:
    """A placeholder name the builder could not find again is refused when the template is rendered."""
    with pytest.raises(ValueError, match="placeholder"):
        personal_placeholder("unsubscribe url")
