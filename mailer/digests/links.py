"""Where the public archive lives: its index, its feed and one page per digest, as absolute URLs."""

from __future__ import annotations

ARCHIVE_PATH = "/archive/"


def archive_index_url(base_url: str) -> str:
    """The archive's index page."""
    return base_url + ARCHIVE_PATH


def archive_feed_url(base_url: str) -> str:
    """The archive's Atom feed."""
    return base_url + ARCHIVE_PATH + "feed.atom"


def archive_page_url(base_url: str, digest_id: int) -> str:
    """One digest's page in the archive (the "view in browser" link)."""
    return f"{base_url}{ARCHIVE_PATH}{digest_id}"
