"""Messages per second: one EmailMessage per recipient versus MessageFactory.build, same digest body;
then DKIM signing: dkimpy's ``dkim.sign`` versus mailer's ``DKIMSigner``, on the same messages.

Run: ``.venv/bin/python bench/message_build.py [--count 20000] [--dkim-count 1000]``.
Both builders get the same ~15 KB rendered, CSS-inlined digest-like variant and distinct
recipients with their own links. The DKIM rows sign with one 2048-bit RSA key: dkimpy and
``sign`` (a whole message at a time) get the same unsigned messages from MessageFactory.build;
then MessageFactory.build with ``dkim=`` (its DKIMSigner reuses the variant's fixed pieces)
is timed against itself without it. One signature of each kind is checked with dkimpy.verify.
Times are this process's CPU time (``time.process_time``): what a worker core spends per
message, whatever else the shared machine is running.
"""

from __future__ import annotations

import argparse
import base64
import sys
import time
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path

import css_inline
import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

# The repository, for the mailer package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mailer.mail import MessageFactory, RenderedEmail, make_message_id, personal_placeholder  # noqa: E402
from mailer.mail.message import ListMail  # noqa: E402
from mailer.mail.signing import SIGNED_HEADERS, DKIMKey, sign  # noqa: E402

SUBJECT = "SMEWG News: 3 meetings, 4 projects, 2 news items"
SENDER = "SMEWG News <news@example.org>"
#: The list headers a real digest carries (Precedence, List-Archive, Archived-At, ..., Feedback-ID).
LIST_MAIL = ListMail(
    archive_url="https://news.example.org/archive/",
    help_url="https://news.example.org/subscribe",
    subscribe_url="https://news.example.org/subscribe",
    campaign="42",
    variant="meetings-projects-news",
    archived_at="https://news.example.org/archive/42",
)
STYLE = """<style>
body { margin: 0; background: #f2f4f7; color: #1d2733; font-family: Arial, sans-serif; }
.container { max-width: 600px; margin: 0 auto; background: #ffffff; }
.item { padding: 12px 24px; border-bottom: 1px solid #dde3ea; }
.item h3 { font-size: 17px; margin: 0 0 4px; color: #0b5cad; }
.meta { color: #5b6775; font-size: 13px; }
a { color: #0b5cad; }
</style>"""


def digest_variant() -> RenderedEmail:
    """A rendered digest-like variant: 17 items with dates, places and links, CSS inlined."""
    items_html, items_text = [], []
    for n in range(17):
        title = f"The {n + 29}th SMEWG meeting in Lima, Perú — agenda, documents and outcomes"
        summary = (
            "Delegates from the 21 APEC economies review the work plan, hear project updates on "
            "digitalisation, access to finance and women-led SMEs, and agree next year's priorities. "
        ) * 2
        url = f"https://news.example.org/meetings/smewg-{n + 29}"
        items_html.append(
            f'<div class="item"><h3><a href="{url}">{title}</a></h3>'
            f'<p class="meta">21–22 August 2023 · Seattle, United States · <a href="{url}.ics">Add to calendar</a></p>'
            f"<p>{summary}</p></div>"
        )
        items_text.append(f"{title}\n21–22 August 2023 · Seattle, United States\n{summary}\n{url}\n")
    footer_html = (
        f'<p><a href="{personal_placeholder("preferences_url")}">Change your topics</a> · '
        f'<a href="{personal_placeholder("unsubscribe_url")}">Unsubscribe</a></p>'
    )
    html = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">{STYLE}</head><body>'
        f'<div class="container">{"".join(items_html)}{footer_html}</div></body></html>'
    )
    inliner = css_inline.CSSInliner(keep_style_tags=True, load_remote_stylesheets=False)
    text = "\n".join(items_text) + (
        f"\n-- \nChange your topics: {personal_placeholder('preferences_url')}\n"
        f"Unsubscribe: {personal_placeholder('unsubscribe_url')}\n"
    )
    return RenderedEmail(text=text, html=inliner.inline(html))


def links(n: int) -> dict[str, str]:
    """Recipient ``n``'s personal links (token-like URLs)."""
    token = f"{n:08d}.aGVsbG8gd29ybGQgdGhpcyBpcyBhIHRva2Vu.c2lnbmF0dXJlX2hlcmU"
    return {
        "preferences_url": f"https://news.example.org/subscriptions/manage/{token}",
        "unsubscribe_url": f"https://news.example.org/subscriptions/unsubscribe/{token}",
    }


def naive(rendered: RenderedEmail, n: int) -> bytes:
    """One EmailMessage per recipient, as mailer/mail/message.py first did it."""
    text, html = rendered.text, rendered.html
    for name, value in links(n).items():
        text = text.replace(personal_placeholder(name), value)
        html = html.replace(personal_placeholder(name), value)
    msg = EmailMessage()
    msg["From"] = SENDER
    msg["To"] = f"Reader {n} <reader{n}@example.com>"
    msg["Subject"] = SUBJECT
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_message_id("example.org")
    msg["List-Id"] = "<news.example.org>"
    msg["List-Unsubscribe"] = f"<{links(n)['unsubscribe_url']}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["Auto-Submitted"] = "auto-generated"
    msg["Precedence"] = "bulk"
    msg["List-Archive"] = f"<{LIST_MAIL.archive_url}>"
    msg["Archived-At"] = f"<{LIST_MAIL.archived_at}>"
    msg["List-Help"] = f"<{LIST_MAIL.help_url}>"
    msg["List-Subscribe"] = f"<{LIST_MAIL.subscribe_url}>"
    msg["List-Post"] = "NO"
    msg["Feedback-ID"] = f"{LIST_MAIL.campaign}:{LIST_MAIL.variant}:news.example.org:mailer"
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


def factory_builder(rendered: RenderedEmail, dkim: DKIMKey | None) -> Callable[[int], bytes]:
    """MessageFactory prepared once for the variant; returns the per-recipient build."""
    factory = MessageFactory(
        rendered, subject=SUBJECT, sender=SENDER, list_id="<news.example.org>", list_mail=LIST_MAIL, dkim=dkim
    )

    def build(n: int) -> bytes:
        link = links(n)
        return factory.build(
            to=f"Reader {n} <reader{n}@example.com>",
            message_id=make_message_id(factory.domain),
            personal=link,
            list_unsubscribe=f"<{link['unsubscribe_url']}>",
        )

    return build


def rate(build: Callable[[int], bytes], count: int) -> tuple[float, int]:
    """Messages per CPU second over ``count`` distinct recipients, and the size of the last message."""
    started = time.process_time()
    for n in range(count):
        data = build(n)
    return count / (time.process_time() - started), len(data)


def test_key() -> tuple[DKIMKey, bytes]:
    """A throwaway 2048-bit RSA key, as DKIM_* would give it, and the DNS TXT record for it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return (b"bench", b"example.org", pem), b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def dkimpy_sign(message: bytes, key: DKIMKey) -> bytes:
    """The DKIM-Signature field from dkimpy, with the tags and over-signing mailer used it with."""
    selector, domain, pem = key
    head = b"\r\n" + message.partition(b"\r\n\r\n")[0].lower()
    present = [name for name in SIGNED_HEADERS if b"\r\n" + name + b":" in head]
    return dkim.sign(message, selector, domain, pem, canonicalize=(b"relaxed", b"relaxed"), include_headers=present * 2)


def signing_time(signer: Callable[[bytes, DKIMKey], bytes], messages: list[bytes], key: DKIMKey) -> float:
    """CPU microseconds per message for ``signer`` over ``messages``."""
    started = time.process_time()
    for message in messages:
        signer(message, key)
    return (time.process_time() - started) * 1e6 / len(messages)


def verified(data: bytes, record: bytes) -> bool:
    """Whether dkimpy verifies ``data`` against the TXT record."""
    return dkim.verify(data, dnsfunc=lambda name, timeout=5: record)


def compare(label: str, rendered: RenderedEmail, count: int) -> None:
    """Run both builders for ``count`` recipients and print their rates and the ratio."""
    naive_rate, naive_size = rate(lambda n: naive(rendered, n), count)
    fast_rate, fast_size = rate(factory_builder(rendered, None), count)
    print(f"{label}, {count} recipients:")
    print(f"  EmailMessage per recipient  {naive_rate:9.0f} msg/s  {1e6 / naive_rate:8.1f} us/msg  {naive_size} B")
    print(f"  MessageFactory.build        {fast_rate:9.0f} msg/s  {1e6 / fast_rate:8.1f} us/msg  {fast_size} B")
    print(f"  ratio                       {fast_rate / naive_rate:9.1f}x")


def compare_signing(rendered: RenderedEmail, count: int) -> None:
    """Sign the same ``count`` built messages with dkimpy and with mailer's signer; print times and ratios."""
    key, record = test_key()
    build = factory_builder(rendered, None)
    messages = [build(n) for n in range(count)]
    dkimpy_us = signing_time(dkimpy_sign, messages, key)
    whole_us = signing_time(sign, messages, key)
    plain_rate, _ = rate(build, count)
    signed_rate, size = rate(factory_builder(rendered, key), count)
    factory_us = 1e6 / signed_rate - 1e6 / plain_rate
    first = messages[0]
    checks = [
        verified(dkimpy_sign(first, key) + first, record),
        verified(sign(first, key) + first, record),
        verified(factory_builder(rendered, key)(0), record),
    ]
    print(f"DKIM rsa-sha256 2048-bit, signing the same {count} messages ({len(first)} B unsigned):")
    print(f"  dkimpy dkim.sign (whole message)          {dkimpy_us:8.1f} us/msg  {1e6 / dkimpy_us:7.0f} msg/s")
    print(f"  DKIMSigner, sign() (whole message)        {whole_us:8.1f} us/msg  {1e6 / whole_us:7.0f} msg/s")
    print(f"  DKIMSigner in MessageFactory.build        {factory_us:8.1f} us/msg  {1e6 / factory_us:7.0f} msg/s")
    print(f"  ratio dkimpy / sign()                     {dkimpy_us / whole_us:8.1f}x")
    print(f"  ratio dkimpy / DKIMSigner in the factory  {dkimpy_us / factory_us:8.1f}x")
    print(f"  MessageFactory.build with DKIM  {signed_rate:7.0f} msg/s  {1e6 / signed_rate:8.1f} us/msg  {size} B")
    print(f"  verified by dkimpy: {'yes' if all(checks) else 'NO'} (dkimpy, sign(), factory)")


def main() -> None:
    """Parse the counts, build the variant, print the building and the signing comparisons."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20000, help="recipients without DKIM (default 20000)")
    parser.add_argument("--dkim-count", type=int, default=1000, help="messages signed (default 1000)")
    args = parser.parse_args()
    rendered = digest_variant()
    print(f"variant: html {len(rendered.html.encode())} B, text {len(rendered.text.encode())} B (UTF-8, rendered)")
    compare("no DKIM", rendered, args.count)
    compare_signing(rendered, args.dkim_count)


if __name__ == "__main__":
    main()
