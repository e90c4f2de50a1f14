"""Where the public archive lives: its index, its feed, one page per digest and test copies' pages, as absolute URLs."""

from __future__ import annotations

ARCHIVE_PATH = "/archive/"


def archive_index_url(base_url: str) -> str:
    """The archive's index page."""
    return base_url + ARCHIVE_PATH


def archive_feed_url(base_url: str) -> str:
    """The archive's Atom feed."""
    return base_url + ARCHIVE_PATH + "feed.atom"


def archive_page_url(base_url: str, number: int) -> str:
    """Digest ``number``'s page in the archive (its "view in browser" link): numbers are what readers see."""
    return f"{base_url}{ARCHIVE_PATH}{number}"


def test_page_url(base_url: str, digest_id: int, token: str) -> str:
    """A test copy's page, by its id (a test send has no number), opened with its viewing token."""
    return f"{base_url}{ARCHIVE_PATH}test/{digest_id}?t={token}"
