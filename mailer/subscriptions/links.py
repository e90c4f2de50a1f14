"""The personal links every email carries, built from plain values so a send loop can call them.

Preferences and unsubscribe tokens never expire but are revocable: they carry the
subscriber's ``link_version``, and bumping that column voids every link issued before.
Confirmation tokens expire (CONFIRM_MAX_AGE) and are single-use through a nonce.
"""

from __future__ import annotations

from flask import current_app

from ..tokens import make_token

CONFIRM_PATH = "/subscriptions/confirm/"
MANAGE_PATH = "/subscriptions/manage/"
UNSUBSCRIBE_PATH = "/subscriptions/unsubscribe/"
#: The public subscribe page: what List-Subscribe and List-Help point to (it explains the list).
SUBSCRIBE_PATH = "/subscribe"


def _base() -> str:
    """BASE_URL without a trailing slash."""
    return current_app.config["BASE_URL"]


def subscribe_url(base_url: str) -> str:
    """The public subscribe page."""
    return base_url + SUBSCRIBE_PATH


def confirm_url(subscriber_id: int, nonce: str) -> str:
    """The link in a confirmation email: opens a page whose button confirms."""
    return _base() + CONFIRM_PATH + make_token("confirm", [subscriber_id, nonce])


def preferences_url(subscriber_id: int, link_version: int) -> str:
    """The link to change topics and name without an account."""
    return _base() + MANAGE_PATH + make_token("manage", [subscriber_id, link_version])


def unsubscribe_url(subscriber_id: int, link_version: int) -> str:
    """The unsubscribe link: GET shows a page, POST (button or RFC 8058 one-click) unsubscribes."""
    return _base() + UNSUBSCRIBE_PATH + make_token("unsubscribe", [subscriber_id, link_version])


def list_unsubscribe_header(one_click_url: str) -> str:
    """The List-Unsubscribe value: the HTTPS URL first, then mailto when configured."""
    parts = [f"<{one_click_url}>"]
    mailto = current_app.config.get("UNSUBSCRIBE_MAILTO")
    if mailto:
        parts.append(f"<mailto:{mailto}?subject=unsubscribe>")
    return ", ".join(parts)


def personal_links(subscriber_id: int, link_version: int) -> dict[str, str]:
    """The values for the ``personal(...)`` placeholders in the email base templates."""
    return {
        "preferences_url": preferences_url(subscriber_id, link_version),
        "unsubscribe_url": unsubscribe_url(subscriber_id, link_version),
    }
