"""What would hurt delivery, checked before anyone sends: DNS (SPF, DKIM, DMARC), the public URL, the next digest.

Every check returns ``Result``s: a name, a level (ok, warn, fail) and a detail that says in plain
words what to fix. Alignment is DMARC's relaxed mode with the organisational domain taken as the
last two labels of a name (no public-suffix list is installed): right for ``news.example.org``,
too generous for ``example.co.uk``, where two unrelated owners' domains would count as aligned.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parseaddr
from html.parser import HTMLParser
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from flask import current_app

from ..config import DEVELOPMENT, LOOPBACK_HOSTS
from ..digests.compose import compose_next, render_content
from ..digests.links import archive_page_url
from ..digests.service import MAX_ID
from ..mail import RenderedEmail
from ..mail.render import PLACEHOLDER, personal_placeholder
from ..mail.signing import DKIMKey, dkim_from_config, load_private_key
from ..models import Topic, utcnow
from ..subscriptions.links import UNSUBSCRIBE_PATH, preferences_url, unsubscribe_url
from ..tokens import make_token
from .probes import ProbeError, http_status, txt_records

OK, WARN, FAIL = "ok", "warn", "fail"

#: Gmail hides the rest of a message whose HTML passes this ("[Message clipped]"), unsubscribe link included.
GMAIL_CLIP_BYTES = 102 * 1024
#: Above this the digest is close enough to the clip to say so.
SIZE_WARN_BYTES = 90 * 1024
#: Links of the next digest checked at once, one thread each.
LINK_THREADS = 30
#: Seconds the console shows the same results before running the checks again.
CACHE_SECONDS = 300
#: The title of mailer's page for an unusable link (templates/subscriptions/link_error.html): it tells
#: mailer's own 404 from a proxy's.
LINK_ERROR_TITLE = "This link cannot be used"
#: Where the "view in browser" link goes: the archive page exists only once the digest is sent.
ARCHIVE_PLACEHOLDER = personal_placeholder("archive_url")


@dataclass(frozen=True)
class Result:
    """One finding: what was checked, how it stands, and what to fix."""

    name: str
    level: str
    detail: str


def run_checks() -> list[Result]:
    """Every check, in the order a reader fixes them: DNS, the public URL, the next digest."""
    config = current_app.config
    from_domain, bounce_domain = domain_of(config["MAIL_FROM"]), domain_of(config["BOUNCE_ADDRESS"])
    nameserver = config.get("DNS_NAMESERVER")
    dkim = dkim_from_config(config)
    spf_aligned = aligned(bounce_domain, from_domain)
    dkim_aligned = dkim is not None and aligned(dkim[1].decode(), from_domain)
    variants = next_variants()
    return [
        *spf_checks(from_domain, bounce_domain, nameserver),
        spf_alignment(from_domain, bounce_domain, dkim_aligned),
        *dkim_checks(dkim, from_domain, nameserver, spf_aligned),
        dmarc_check(from_domain, nameserver),
        base_url_check(config["BASE_URL"], config["MAILER_ENV"]),
        one_click_check(config["BASE_URL"]),
        *size_checks(variants),
        *link_checks(variants),
    ]


def failed(results: Iterable[Result]) -> bool:
    """True when any result is a failure."""
    return any(result.level == FAIL for result in results)


def domain_of(address: str) -> str:
    """``example.org`` from ``News <news@example.org>``, lowercase."""
    return parseaddr(address)[1].rpartition("@")[2].lower().rstrip(".")


def organisational_domain(domain: str) -> str:
    """The last two labels of ``domain`` (see the module's note on public suffixes)."""
    return ".".join(domain.split(".")[-2:])


def aligned(domain: str, from_domain: str) -> bool:
    """True when ``domain`` and the From domain share their organisational domain (DMARC relaxed alignment)."""
    return organisational_domain(domain) == organisational_domain(from_domain)


def _lookup(name: str, nameserver: tuple[str, int] | None, prefix: str) -> list[str]:
    """The TXT records at ``name`` that start with ``prefix`` (case and spaces around ``=`` ignored)."""
    wanted = prefix.lower()
    return [r for r in txt_records(name, nameserver) if re.sub(r"\s*=\s*", "=", r.strip()).lower().startswith(wanted)]


def _tags(record: str) -> dict[str, str]:
    """The ``tag=value`` pairs of a DKIM or DMARC record, tags lowercase, spaces removed from values."""
    pairs = (part.split("=", 1) for part in record.split(";") if "=" in part)
    return {tag.strip().lower(): re.sub(r"\s+", "", value) for tag, value in pairs}


def spf_checks(from_domain: str, bounce_domain: str, nameserver: tuple[str, int] | None) -> list[Result]:
    """One SPF record each for the From domain and the bounce domain (once when they are the same)."""
    if from_domain == bounce_domain:
        return [spf_record(from_domain, "From and bounce domain", nameserver)]
    return [spf_record(from_domain, "From domain", nameserver), spf_record(bounce_domain, "bounce domain", nameserver)]


def spf_record(domain: str, role: str, nameserver: tuple[str, int] | None) -> Result:
    """The domain publishes exactly one ``v=spf1`` TXT record."""
    name = f"SPF ({role} {domain})"
    try:
        records = [r for r in _lookup(domain, nameserver, "v=spf1") if r.lower().split(" ", 1)[0] == "v=spf1"]
    except ProbeError as exc:
        return Result(name, FAIL, str(exc))
    if not records:
        return Result(
            name,
            FAIL,
            f"{domain} publishes no SPF record: publish one TXT record that names your SMTP relay, "
            'e.g. "v=spf1 include:<relay\'s SPF domain> -all"',
        )
    if len(records) > 1:
        return Result(
            name,
            FAIL,
            f"{domain} publishes {len(records)} SPF records, which receivers treat as an error "
            "(RFC 7208 §4.5, permerror): merge them into one",
        )
    return Result(name, OK, records[0])


def spf_alignment(from_domain: str, bounce_domain: str, dkim_aligned: bool) -> Result:
    """The envelope sender's domain (every VERP address is in BOUNCE_ADDRESS's) aligns with the From domain."""
    name = "SPF alignment"
    if aligned(bounce_domain, from_domain):
        return Result(
            name,
            OK,
            f"the bounce domain {bounce_domain} and the From domain {from_domain} share "
            f"{organisational_domain(from_domain)} (relaxed alignment)",
        )
    rescue = "; DMARC can still pass through DKIM alone" if dkim_aligned else " and DKIM does not align either"
    return Result(
        name,
        WARN if dkim_aligned else FAIL,
        f"the bounce domain {bounce_domain} (BOUNCE_ADDRESS) is not under {organisational_domain(from_domain)}, "
        f"so SPF cannot pass DMARC{rescue}: use a BOUNCE_ADDRESS under {organisational_domain(from_domain)}",
    )


def dkim_checks(
    key: DKIMKey | None, from_domain: str, nameserver: tuple[str, int] | None, spf_aligned: bool
) -> list[Result]:
    """DKIM's domain aligns with the From domain and its DNS record publishes our key; a warning when DKIM is off."""
    if key is None:
        return [
            Result(
                "DKIM",
                WARN,
                "DKIM is off, so messages go out unsigned and DMARC rests on SPF alone: "
                "set DKIM_DOMAIN, DKIM_SELECTOR and DKIM_PRIVATE_KEY",
            )
        ]
    selector, domain, pem = key[0].decode(), key[1].decode(), key[2]
    return [
        dkim_alignment(domain, from_domain, spf_aligned),
        dkim_record(f"{selector}._domainkey.{domain}", pem, nameserver),
    ]


def dkim_alignment(domain: str, from_domain: str, spf_aligned: bool) -> Result:
    """DKIM_DOMAIN shares the From domain's organisational domain."""
    if aligned(domain, from_domain):
        return Result("DKIM alignment", OK, f"DKIM_DOMAIN {domain} aligns with the From domain {from_domain}")
    rescue = "; DMARC can still pass through SPF alone" if spf_aligned else " and SPF does not align either"
    return Result(
        "DKIM alignment",
        WARN if spf_aligned else FAIL,
        f"DKIM_DOMAIN {domain} is not under {organisational_domain(from_domain)}, so its signature cannot pass "
        f"DMARC{rescue}: sign with a domain under {organisational_domain(from_domain)}",
    )


def dkim_record(name: str, pem: bytes, nameserver: tuple[str, int] | None) -> Result:
    """The TXT record at ``name`` publishes (p=) the public half of DKIM_PRIVATE_KEY."""
    check = f"DKIM key ({name})"
    publish = "publish the public half of DKIM_PRIVATE_KEY (openssl pkey -in KEY -pubout) as v=DKIM1; k=rsa; p=…"
    try:
        records = [_tags(r) for r in txt_records(name, nameserver)]
    except ProbeError as exc:
        return Result(check, FAIL, str(exc))
    records = [tags for tags in records if "p" in tags and tags.get("v", "DKIM1") == "DKIM1"]
    if len(records) != 1:
        found = "no DKIM record" if not records else f"{len(records)} DKIM records"
        return Result(check, FAIL, f"{name} has {found}: {publish}")
    try:
        key = load_private_key(pem)
        published = base64.b64decode(records[0]["p"], validate=True)
    except (ValueError, binascii.Error) as exc:
        return Result(check, FAIL, f"{exc}: {publish}")
    ours = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if published != ours:
        what = "revokes the key (empty p=)" if not published else "publishes another key than DKIM_PRIVATE_KEY's"
        return Result(check, FAIL, f"{name} {what}, so receivers reject every signature: {publish}")
    if key.key_size < 2048:
        return Result(check, WARN, f"the key matches but has {key.key_size} bits: receivers want 2048")
    return Result(check, OK, f"publishes the public half of DKIM_PRIVATE_KEY ({key.key_size}-bit RSA)")


def dmarc_check(from_domain: str, nameserver: tuple[str, int] | None) -> Result:
    """``_dmarc.<From domain>`` (else its organisational domain's, by sp=) publishes a DMARC policy."""
    name = f"DMARC ({from_domain})"
    org = organisational_domain(from_domain)
    try:
        records = _lookup(f"_dmarc.{from_domain}", nameserver, "v=DMARC1")
        policy_tag = "p"
        if not records and org != from_domain:
            records, policy_tag = _lookup(f"_dmarc.{org}", nameserver, "v=DMARC1"), "sp"
    except ProbeError as exc:
        return Result(name, FAIL, str(exc))
    if len(records) != 1:
        found = "no DMARC record" if not records else f"{len(records)} DMARC records (receivers ignore them all)"
        return Result(
            name,
            FAIL,
            f"_dmarc.{from_domain} has {found}: publish one TXT record such as "
            f'"v=DMARC1; p=none; rua=mailto:dmarc@{org}", then tighten p= once reports show your mail passes',
        )
    tags = _tags(records[0])
    policy = (tags.get(policy_tag) or tags.get("p") or "").lower()
    if policy not in ("none", "quarantine", "reject"):
        return Result(name, FAIL, "the DMARC record has no valid p= policy, so receivers ignore it: add p=none")
    if policy == "none":
        return Result(
            name,
            WARN,
            "policy p=none: receivers take no action on mail that fails DMARC; move to p=quarantine "
            "once the reports (rua=) show your mail passes",
        )
    return Result(name, OK, f"policy p={policy}")


def base_url_check(base_url: str, env: str) -> Result:
    """BASE_URL is https; plain http passes with a warning only on this machine in development."""
    parts = urlsplit(base_url)
    if parts.scheme == "https":
        return Result("BASE_URL", OK, f"{base_url} is https")
    if env == DEVELOPMENT and parts.hostname in LOOPBACK_HOSTS:
        return Result("BASE_URL", WARN, f"{base_url} is plain http: fine on this machine, but subscribers need https")
    return Result(
        "BASE_URL",
        FAIL,
        f"{base_url} is plain http: Gmail and Yahoo want an https one-click unsubscribe "
        "(RFC 8058) and browsers warn on every link; serve mailer over https and set BASE_URL to it",
    )


def one_click_check(base_url: str) -> Result:
    """A real RFC 8058 POST to an unsubscribe link gets mailer's own answer (404 for an unknown link)."""
    # Subscriber 0 never exists (ids start at 1): a genuine token that unsubscribes nobody.
    url = base_url + UNSUBSCRIBE_PATH + make_token("unsubscribe", [0, 0])
    name, shown = "One-click unsubscribe", base_url + UNSUBSCRIBE_PATH + "…"
    try:
        status, body = http_status(url, "POST", b"List-Unsubscribe=One-Click", follow=False)
    except ProbeError as exc:
        return Result(name, FAIL, f"POST {shown}: {exc}; mail clients could not unsubscribe anyone")
    if status == 404 and LINK_ERROR_TITLE in body:
        return Result(name, OK, f"POST {shown} reaches mailer (404 for an unknown link, as it should)")
    if 300 <= status < 400:
        problem = "redirects, and mail clients post once without following redirects: serve it directly"
    elif status in (401, 403):
        problem = "is refused: let POST /subscriptions/unsubscribe/… through without cookies or a login"
    elif status >= 500:
        problem = "is a server error: read mailer's (or the proxy's) log"
    else:
        problem = "is not mailer's answer: check that BASE_URL reaches mailer"
    return Result(name, FAIL, f"POST {shown} answered {status}, which {problem}")


@dataclass(frozen=True)
class Variant:
    """One topic variant of the next digest: its label and parts, personal links still placeholders."""

    label: str
    rendered: RenderedEmail


def next_variants() -> list[Variant]:
    """Every topic variant the next digest would go out as (one per combination of its topics)."""
    next_digest = compose_next()
    variants = []
    for mask in range(1, next_digest.topics + 1):
        if mask & next_digest.topics == mask:
            _, rendered = render_content(next_digest.content, mask, next_digest.until, ARCHIVE_PLACEHOLDER)
            variants.append(Variant("+".join(Topic(mask).to_names()), rendered))
    return variants


def as_sent(html: str) -> str:
    """``html`` with its placeholders filled with links as long as a real subscriber's."""
    base_url = current_app.config["BASE_URL"]
    samples = {
        "preferences_url": preferences_url(MAX_ID, 1),
        "unsubscribe_url": unsubscribe_url(MAX_ID, 1),
        "archive_url": archive_page_url(base_url, MAX_ID),
    }
    return PLACEHOLDER.sub(lambda match: samples.get(match.group(1), base_url), html)


def size_checks(variants: list[Variant]) -> list[Result]:
    """Each variant's HTML stays under Gmail's clipping limit."""
    if not variants:
        return [Result("Digest size", OK, "nothing is new since the last digest: there is no digest to measure")]
    return [size_check(variant) for variant in variants]


def size_check(variant: Variant) -> Result:
    """One variant's HTML size, as sent (before transfer encoding), against GMAIL_CLIP_BYTES."""
    size = len(as_sent(variant.rendered.html).encode("utf-8"))
    name, measured = f"Digest size ({variant.label})", f"{size / 1024:.0f} KB of HTML"
    if size > GMAIL_CLIP_BYTES:
        return Result(
            name,
            FAIL,
            f"{measured}: Gmail clips it at 102 KB and hides the rest, the unsubscribe link included; "
            "shorten the items or leave some for the next digest",
        )
    if size > SIZE_WARN_BYTES:
        return Result(name, WARN, f"{measured}: close to Gmail's 102 KB clipping limit")
    return Result(name, OK, f"{measured}, under Gmail's 102 KB clipping limit")


class _Hrefs(HTMLParser):
    """Collects the href of every element that has one."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Keep the element's href."""
        self.hrefs += [value for name, value in attrs if name == "href" and value]


#: A URL in the text part: up to white space or a closing bracket; trailing punctuation is dropped after.
TEXT_URL = re.compile(r"https?://[^\s<>\"')\]]+")


def links_in(rendered: RenderedEmail) -> set[str]:
    """The http(s) links of both parts, without personal ones (placeholders) and mailto:."""
    parser = _Hrefs()
    parser.feed(rendered.html)
    found = parser.hrefs + [url.rstrip(".,;:!?") for url in TEXT_URL.findall(rendered.text)]
    return {url for url in found if urlsplit(url).scheme in ("http", "https") and not PLACEHOLDER.search(url)}


def link_checks(variants: list[Variant]) -> list[Result]:
    """Every link of every variant answers; one failure per broken link, naming it."""
    urls = sorted(set().union(*(links_in(variant.rendered) for variant in variants)))
    if not urls:
        return [Result("Links", OK, "the next digest has no links to check")]
    with ThreadPoolExecutor(max_workers=min(LINK_THREADS, len(urls))) as pool:
        problems = [(url, problem) for url, problem in zip(urls, pool.map(link_problem, urls), strict=True) if problem]
    if not problems:
        return [Result("Links", OK, f"all {len(urls)} links of the next digest answer")]
    return [Result("Link", FAIL, f"{url}: {problem}; correct or remove it in the content") for url, problem in problems]


def link_problem(url: str) -> str | None:
    """What is wrong with ``url`` (HEAD, then GET for servers that refuse HEAD), or None when it answers."""
    try:
        status, _ = http_status(url, "HEAD")
    except ProbeError:
        status = 0
    if status == 0 or status >= 400:
        try:
            status, _ = http_status(url, "GET")
        except ProbeError as exc:
            return str(exc)
    return f"answered {status}" if status >= 400 else None


@dataclass
class _Cache:
    """The latest results of one app in this process, and when they were made."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    results: list[Result] = field(default_factory=list)
    made: float = float("-inf")
    at: datetime | None = None


def recent_checks() -> tuple[list[Result], datetime]:
    """The checks' results, run again only when the last run in this process is CACHE_SECONDS old."""
    cache: _Cache = current_app.extensions.setdefault("doctor", _Cache())
    # A second reload while the checks run waits for them instead of starting its own.
    with cache.lock:
        if time.monotonic() - cache.made > CACHE_SECONDS or cache.at is None:
            cache.results, cache.made, cache.at = run_checks(), time.monotonic(), utcnow()
        return cache.results, cache.at
