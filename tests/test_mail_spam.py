"""What SpamAssassin's local rules think of a real digest and a real confirmation email.

Debian's ``spamassassin`` runs with ``-L`` (local tests only: no DNS, no network) on the exact
bytes mailer sends, DKIM-signed. Without the command the test is skipped, except on CI
(``CI=true``), where it fails: .ci/run installs it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask

from mailer.digests.service import variant_factory
from mailer.extensions import db
from mailer.mail import make_message_id
from mailer.models import ALL_TOPICS, Digest, Subscriber, SubscriberStatus
from mailer.subscriptions.emails import send_confirmation
from mailer.subscriptions.links import list_unsubscribe_header, personal_links
from tests.conftest import CaughtMail
from tests.data import dkim_key, meeting, news_item
from tests.subscribing import add_subscriber

#: The most a message may score; SpamAssassin marks spam at 5.0.
MAX_SCORE = 0.5
SCORE = re.compile(r"^X-Spam-Status: \w+, score=(-?\d+(?:\.\d+)?)", re.MULTILINE)


@pytest.fixture
def spamassassin() -> str:
    """The spamassassin command; missing, the test is skipped (on CI it fails)."""
    command = shutil.which("spamassassin")
    if command is None:
        if os.environ.get("CI") == "true":
            pytest.fail("spamassassin is not installed (apt-get install spamassassin)")
        pytest.skip("spamassassin is not installed")
    return command


@pytest.fixture
def signing_app(app: Flask) -> Flask:
    """The app as production runs it: https links, its own List-Id, DKIM-signed."""
    app.config.update(
        BASE_URL="https://news.example.org",
        LIST_ID="SMEWG News <news.example.org>",
        MAIL_FROM="SMEWG News <news@example.org>",
        ORG_NAME="SMEWG News",
        ORG_POSTAL_ADDRESS="APEC Secretariat\n35 Heng Mui Keng Terrace\nSingapore 119616",
        DKIM_SELECTOR="mailer",
        DKIM_DOMAIN="example.org",
        DKIM_KEY=dkim_key().pem,
    )
    return app


def _score(spamassassin: str, message: bytes, home: Path) -> tuple[float, str]:
    """SpamAssassin's score for ``message`` with local tests only, and its report."""
    env = {**os.environ, "HOME": str(home)}  # its user_prefs go to the test's folder
    result = subprocess.run([spamassassin, "-L", "-t"], input=message, capture_output=True, timeout=120, env=env)
    report = result.stdout.decode("utf-8", "replace")
    found = SCORE.search(report)
    assert found, report + result.stderr.decode("utf-8", "replace")
    return float(found[1]), report.rpartition("Content analysis details:")[2]


def test_a_digest_scores_low(signing_app: Flask, spamassassin: str, tmp_path: Path) -> None:
    """A digest about meetings, projects and news, as one subscriber gets it."""
    sid = add_subscriber(signing_app, "ann.lee@example.com", SubscriberStatus.CONFIRMED)
    with signing_app.app_context():
        content = {
            "meetings": [meeting(summary="Delegates reviewed the work plan for 2024.", link=None, demo=False)],
            "news": [news_item(demo=False)],
        }
        digest = Digest(
            subject="SMEWG News — March 2024: 1 meeting, 1 news item", status="sending", until=datetime.now(UTC),
            content=content, topics=ALL_TOPICS,
        )  # fmt: skip
        db.session.add(digest)
        db.session.commit()
        factory = variant_factory(digest.id, ALL_TOPICS)
        links = personal_links(sid, 0)
        data = factory.build(
            to="Ann Lee <ann.lee@example.com>", message_id=make_message_id(factory.domain), personal=links,
            list_unsubscribe=list_unsubscribe_header(links["unsubscribe_url"]),
        )  # fmt: skip
    score, report = _score(spamassassin, data, tmp_path)
    assert score <= MAX_SCORE, report


def test_a_confirmation_scores_low(signing_app: Flask, mailbox: CaughtMail, spamassassin: str, tmp_path: Path) -> None:
    """The confirmation email as the SMTP server received it."""
    sid = add_subscriber(signing_app, "ann.lee@example.com", SubscriberStatus.PENDING)
    with signing_app.app_context():
        subscriber = db.session.get(Subscriber, sid)
        subscriber.name = "Ann Lee"
        send_confirmation(subscriber)
    mailbox.wait_for(1)
    score, report = _score(spamassassin, mailbox.raw[0], tmp_path)
    assert score <= MAX_SCORE, report
