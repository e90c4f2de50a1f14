"""The archive's Atom feed (RFC 4287), built with ElementTree so every value is escaped."""

from __future__ import annotations

from datetime import datetime
from xml.etree import ElementTree as ET

from ..models import TOPIC_LABELS, Digest, Topic, utcnow
from .links import archive_feed_url, archive_index_url, archive_page_url

ATOM = "http://www.w3.org/2005/Atom"


def atom_feed(digests: list[Digest], base_url: str, title: str) -> bytes:
    """The feed document for ``digests`` (newest first), with links built from ``base_url``."""
    ET.register_namespace("", ATOM)
    feed = ET.Element(f"{{{ATOM}}}feed")
    _text(feed, "id", archive_index_url(base_url))
    _text(feed, "title", title)
    _text(feed, "updated", _stamp(digests[0].sent_at if digests else utcnow()))
    ET.SubElement(feed, f"{{{ATOM}}}link", rel="self", href=archive_feed_url(base_url))
    ET.SubElement(feed, f"{{{ATOM}}}link", rel="alternate", type="text/html", href=archive_index_url(base_url))
    _text(ET.SubElement(feed, f"{{{ATOM}}}author"), "name", title)
    for digest in digests:
        url = archive_page_url(base_url, digest.number)
        entry = ET.SubElement(feed, f"{{{ATOM}}}entry")
        _text(entry, "id", url)
        _text(entry, "title", digest.subject)
        _text(entry, "updated", _stamp(digest.sent_at or digest.created_at))
        ET.SubElement(entry, f"{{{ATOM}}}link", rel="alternate", type="text/html", href=url)
        _text(entry, "summary", entry_summary(digest))
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)


def entry_summary(digest: Digest) -> str:
    """``Meetings: A; B. News: C.`` — the titles the digest carried, by topic."""
    parts = []
    for topic in Topic(digest.topics).to_names():
        titles = [item["title"] for item in digest.content.get(topic, [])]
        if titles:
            parts.append(f"{TOPIC_LABELS[topic]}: {'; '.join(titles)}.")
    return " ".join(parts)


def _text(parent: ET.Element, tag: str, value: str) -> ET.Element:
    """Append an Atom element holding ``value``."""
    element = ET.SubElement(parent, f"{{{ATOM}}}{tag}")
    element.text = value
    return element


def _stamp(moment: datetime) -> str:
    """An RFC 3339 timestamp in UTC."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
